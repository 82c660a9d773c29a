"""``cyclegan-synthetic``: write the built-in synthetic apples (A) and oranges (B) set."""

import argparse

from cyclegan_tf.cli.common import add_verbose_argument, quiet_tensorflow, user_errors

PROG = "cyclegan-synthetic"


def build_parser():
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write the synthetic apples (A) and oranges (B) set in the trainA/trainB/"
        "testA/testB layout.",
    )
    parser.add_argument("--out", required=True, help="Folder to create.")
    parser.add_argument("--size", type=int, default=128, help="Image side in pixels.")
    parser.add_argument("--n-train", type=int, default=200, help="Training images per domain.")
    parser.add_argument("--n-test", type=int, default=40, help="Test images per domain.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the drawing.")
    add_verbose_argument(parser)
    return parser


def main(argv=None):
    """Writes the set and prints what is there; returns the exit status (2 on bad input)."""
    args = build_parser().parse_args(argv)
    quiet_tensorflow(args.verbose)
    with user_errors(PROG):
        # Imported on use: --help and flag errors answer without loading the library.
        from cyclegan_tf import io
        from cyclegan_tf.data.synthetic import DOMAINS, write_synthetic_dataset

        out_dir = write_synthetic_dataset(
            args.out, size=args.size, n_train=args.n_train, n_test=args.n_test, seed=args.seed
        )
        for split in ("train", "test"):
            for domain, kind in DOMAINS.items():
                folder = io.join(out_dir, f"{split}{domain}")
                count = sum(name.endswith(".jpg") for name in io.listdir(folder))
                print(f"{folder}: {count} {kind} images ({args.size}x{args.size} JPEG)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
