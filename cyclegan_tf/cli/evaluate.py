"""``cyclegan-evaluate`` / ``scripts/evaluate.py``: FID and KID of a translator against a target domain.

Example::

    cyclegan-evaluate --model saved_models/apple2orange --dataset apple2orange --split testA
        --inception-weights inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
"""

import argparse
import json

from cyclegan_tf.cli.common import (
    add_model_argument,
    add_verbose_argument,
    quiet_tensorflow,
    user_errors,
)

PROG = "cyclegan-evaluate"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "FID and KID of translated images against the target domain, next to the same scores "
            "of the untranslated source (the identity baseline)."
        ),
    )
    add_model_argument(parser)
    parser.add_argument("--source", help="Folder of source-domain images to translate.")
    parser.add_argument(
        "--target", help="Folder of target-domain images (default: the other domain of --split)."
    )
    parser.add_argument(
        "--dataset",
        help="A TFDS cycle_gan config (apple2orange, ...) or 'synthetic'; use with --split.",
    )
    parser.add_argument(
        "--data-dir",
        help="A folder in the published zip layout (trainA/, testA/, ...); use with --split.",
    )
    parser.add_argument(
        "--split",
        help="The source split of --dataset/--data-dir (trainA, trainB, testA or testB); the target "
        "is the other domain's split.",
    )
    parser.add_argument(
        "--inception-weights",
        help="Local InceptionV3 weights (.h5); without it Keras downloads the ImageNet weights.",
    )
    parser.add_argument("--cache-dir", help="Keep the features of folders and dataset splits here.")
    parser.add_argument("--json", help="Also write the results to this JSON file.")
    parser.add_argument(
        "--max-images", type=int, help="Use at most this many images of each set (default: all)."
    )
    parser.add_argument("--batch-size", type=int, default=32, help="Images per InceptionV3 pass.")
    parser.add_argument("--kid-subsets", type=int, default=100, help="KID subsets (default 100).")
    parser.add_argument(
        "--kid-subset-size", type=int, default=1000, help="Images per KID subset (default 1000)."
    )
    add_verbose_argument(parser)
    return parser


def format_table(results):
    """The results as the lines printed to the terminal."""

    def row(name, scores):
        kid = f"{scores['kid']:.4f} ± {scores['kid_std']:.4f}"
        return f"  {name:<22}{scores['fid']:>10.2f}   {kid}"

    return "\n".join(
        [
            f"Against {results['target']} ({results['num_target']} images), "
            f"{results['num_source']} source images:",
            f"  {'':<22}{'FID':>10}   KID",
            row("translated", results),
            row("untranslated source", results["baseline"]),
            "Lower is better; FID grows as sets shrink, so compare numbers at equal set sizes "
            "made with the same tool.",
        ]
    )


def main(argv=None):
    """Evaluates and prints FID/KID; returns 0 (errors exit with status 2)."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG, flags={"model_path": "--model"}):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf import io
        from cyclegan_tf.evaluation import evaluate

        results = evaluate(
            args.model,
            source=args.source,
            target=args.target,
            dataset=args.dataset,
            data_dir=args.data_dir,
            split=args.split,
            inception_weights=args.inception_weights or "imagenet",
            cache_dir=args.cache_dir,
            max_images=args.max_images,
            batch_size=args.batch_size,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
        )
        if args.json:
            io.write_text(args.json, json.dumps(results, indent=2))
    print(format_table(results))
    if args.json:
        print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
