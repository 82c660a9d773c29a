"""Pairs per second of the first steps of the training pipeline over a data folder.

Run under ``/usr/bin/time -v`` for the peak RSS; compare folders of 2,000 and 20,000 images per domain
to see that memory does not grow with the data set (docs/performance.md)::

    /usr/bin/time -v python scripts/measure_pipeline_memory.py DIR --cache none --steps 600

or a ``--preprocess`` mode on high-resolution photos::

    /usr/bin/time -v python scripts/measure_pipeline_memory.py DIR --preprocess scale_width_and_crop \
        --load-size 1024 --image-size 360 --steps 40
"""

import argparse
import time

from cyclegan_tf import data


def main(argv=None):
    """Loads ``DIR/trainA`` and ``DIR/trainB`` and times ``--steps`` steps after 20 untimed ones."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="A folder with trainA/ and trainB/.")
    parser.add_argument("--cache", default="none", choices=data.CACHE_MODES)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--load-size", type=int, default=286)
    parser.add_argument("--preprocess", default="resize_and_crop", choices=data.PREPROCESS_MODES)
    args = parser.parse_args(argv)
    started = time.monotonic()
    domain_a, domain_b = data.load_domains(data_dir=args.data_dir, split="train")
    print(f"sources: {domain_a.num_examples} + {domain_b.num_examples} files, "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
    dataset, steps_per_epoch = data.make_train_dataset(
        domain_a,
        domain_b,
        args.image_size,
        args.load_size,
        batch_size=1,
        cache=args.cache,
        preprocess=args.preprocess,
    )
    iterator = iter(dataset)
    shapes = {tuple(next(iterator)[0].shape) for _ in range(min(20, args.steps))}
    started = time.monotonic()
    for _ in range(args.steps):
        next(iterator)
    rate = args.steps / (time.monotonic() - started)
    print(
        f"cache={args.cache} preprocess={args.preprocess}: {rate:.1f} pairs/s over {args.steps} "
        f"steps (epoch: {steps_per_epoch}); batch shapes seen first: {sorted(shapes)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
