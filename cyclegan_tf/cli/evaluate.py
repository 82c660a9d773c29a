"""``cyclegan-evaluate`` / ``scripts/evaluate.py``: FID and KID of a translator against a target domain.

Example::

    cyclegan-evaluate --model saved_models/apple2orange --dataset apple2orange --split testA
        --inception-weights inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5
"""

import argparse
import dataclasses
import json
import os
import time

from cyclegan_tf.cli.common import add_model_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-evaluate"
SPLITS = ("trainA", "trainB", "testA", "testB")


@dataclasses.dataclass
class ImageSet:
    """Images to evaluate, from a folder or a dataset split.

    Attributes:
        label: str, how the set is named in the output.
        count: int, the number of images.
        files: list of str or None, the image files of a folder.
        dataset: ``tf.data.Dataset`` of ``uint8 [H, W, 3]`` or None, the images of a dataset split.
        cache_key: JSON-serialisable or None, what identifies a dataset split for the cache.
    """

    label: str
    count: int
    files: list | None = None
    dataset: object = None
    cache_key: object = None

    def images(self):
        """A fresh iterator over the ``uint8 [H, W, 3]`` images."""
        from cyclegan_tf.data.decode import read_image_file

        if self.files is not None:
            return (read_image_file(path) for path in self.files)
        return (image.numpy() for image in self.dataset)


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
        choices=SPLITS,
        help="The source split of --dataset/--data-dir; the target is the other domain's split.",
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
    return parser


def _check_args(args):
    from_dataset = args.dataset is not None or args.data_dir is not None
    if args.source is not None and from_dataset:
        raise ValueError("give either --source or --dataset/--data-dir with --split, not both")
    if args.dataset is not None and args.data_dir is not None:
        raise ValueError("give either --dataset or --data-dir, not both")
    if args.source is None and not from_dataset:
        raise ValueError("no source images: give --source DIR, or --dataset NAME --split testA")
    if from_dataset and args.split is None:
        raise ValueError("--dataset/--data-dir needs --split (e.g. --split testA)")
    if args.source is not None and args.target is None:
        raise ValueError("--source needs --target, a folder of target-domain images")
    if args.max_images is not None and args.max_images < 2:
        raise ValueError(f"--max-images must be at least 2. Received: {args.max_images}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1. Received: {args.batch_size}")


def other_split(split):
    """``testA`` → ``testB`` and so on."""
    return split[:-1] + ("B" if split.endswith("A") else "A")


def folder_set(folder, max_images=None):
    """An ``ImageSet`` of the image files directly inside ``folder``."""
    from cyclegan_tf.data.decode import list_image_files

    if not os.path.isdir(folder):
        raise ValueError(f"no such folder: {folder}")
    files = list_image_files(folder)[:max_images]
    if len(files) < 2:
        raise ValueError(f"{folder} holds {len(files)} image file(s); FID and KID need at least 2")
    return ImageSet(label=folder, count=len(files), files=files)


def dataset_set(dataset, data_dir, split, max_images=None):
    """An ``ImageSet`` of one domain of a dataset split (``testA``, ...)."""
    if data_dir is not None:
        return folder_set(os.path.join(data_dir, split), max_images)
    from cyclegan_tf.data import load_domains

    domain_a, domain_b = load_domains(dataset=dataset, split=split[:-1])
    domain = domain_a if split.endswith("A") else domain_b
    count = domain.num_examples if max_images is None else min(max_images, domain.num_examples)
    return ImageSet(
        label=f"{dataset} {split}",
        count=count,
        dataset=domain.images.take(count),
        cache_key={"dataset": dataset, "split": split, "count": count},
    )


def image_sets(args):
    """``(source, target)`` ``ImageSet``s from the arguments."""
    if args.source is not None:
        source = folder_set(args.source, args.max_images)
    else:
        source = dataset_set(args.dataset, args.data_dir, args.split, args.max_images)
    if args.target is not None:
        target = folder_set(args.target, args.max_images)
    else:
        target = dataset_set(args.dataset, args.data_dir, other_split(args.split), args.max_images)
    return source, target


def set_features(inception, image_set, cache_dir):
    """Features of an untranslated ``ImageSet``, through the cache when one is given."""
    from cyclegan_tf.evaluation import features

    if image_set.files is not None:
        label = os.path.basename(os.path.normpath(image_set.label))
        return features.file_features(inception, image_set.files, cache_dir, label)
    key = {**image_set.cache_key, "weights": inception.weights_id}
    return features.cached(
        cache_dir,
        image_set.label.replace(" ", "_"),
        key,
        lambda: inception(image_set.images(), count=image_set.count),
    )


def translated_features(inception, translator, image_set):
    """Features of the translations of an ``ImageSet``, one image at a time (sizes may differ)."""
    translations = (translator.translate_pixels(image[None])[0] for image in image_set.images())
    return inception(translations, count=image_set.count)


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


def evaluate(args):
    """Runs the evaluation the arguments describe and returns the results as a dict."""
    from cyclegan_tf import translation
    from cyclegan_tf.evaluation import InceptionFeatures, metrics

    start = time.perf_counter()
    source, target = image_sets(args)
    translation.resolve_model_path(args.model)  # a wrong --model fails before the slow part
    inception = InceptionFeatures(args.inception_weights or "imagenet", args.batch_size)
    translator = translation.load_translator(args.model)

    print(f"Features of the target, {target.label} ({target.count} images)")
    target_features = set_features(inception, target, args.cache_dir)
    print(f"Features of the source, {source.label} ({source.count} images)")
    source_features = set_features(inception, source, args.cache_dir)
    print("Translating the source and extracting features")
    output_features = translated_features(inception, translator, source)

    def scores(features):
        result = metrics.scores(features, target_features, args.kid_subsets, args.kid_subset_size)
        return dataclasses.asdict(result)

    return {
        "model": args.model,
        "source": source.label,
        "target": target.label,
        "num_source": source.count,
        "num_target": target.count,
        "inception_weights": args.inception_weights or "imagenet",
        **scores(output_features),
        "baseline": scores(source_features),
        "kid_subsets": args.kid_subsets,
        "kid_subset_size": min(args.kid_subset_size, source.count, target.count),
        "seconds": round(time.perf_counter() - start, 2),
    }


def main(argv=None):
    """Evaluates and prints FID/KID; returns 0 (errors exit with status 2)."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    with user_errors(PROG):
        _check_args(args)
        results = evaluate(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
    print(format_table(results))
    if args.json:
        print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
