"""The cost of decoding JPEGs as PIL does: libjpeg's accurate DCT against TensorFlow's fast one.

Writes photo-like JPEGs (smooth colour areas under a grain of ``--grain`` levels, quality 90, chroma
4:2:0 and 4:4:4) of each ``--sizes`` entry and prints, per file, how far the fast decode is from
PIL's pixels and the median seconds of ``--repeats`` decodes (the decoders taking turns) by
``tf.io.decode_jpeg`` with the fast DCT (TensorFlow's default, what ``tf.io.decode_image`` does) and
with the accurate one, by ``data.decode_image`` (accurate DCT and EXIF orientation), by the same with
the fast DCT (what ``data.decode_image`` was before) and by PIL (docs/performance.md)::

    /usr/bin/time -v python scripts/measure_jpeg_decode.py --sizes 4000x3000 256x256
"""

import argparse
import io
import statistics
import time

import numpy as np


def photo_jpeg(width, height, grain, subsampling, seed=0):
    """JPEG bytes of a photo-like image (quality 90)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC), np.float32)
    noisy = smooth + rng.normal(0, grain, smooth.shape).astype(np.float32)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=90, subsampling=subsampling
    )
    return buffer.getvalue()


def median_seconds(decoders, contents, repeats):
    """``{name: median wall time of decoder(contents)}``, the decoders taking turns.

    Taking turns, each decoder sees the same load from other processes; one untimed round first.
    """
    times = {name: [] for name in decoders}
    for round_index in range(repeats + 1):
        for name, decode in decoders.items():
            started = time.perf_counter()
            decode(contents)
            if round_index:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    """Measures and prints one line per file and decoder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["4000x3000", "256x256"], help="WxH each.")
    parser.add_argument("--grain", type=float, default=8.0, help="Grain of the photos, in levels.")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)

    import tensorflow as tf
    from PIL import Image

    from cyclegan_tf.data import decode

    def pil(contents):
        with Image.open(io.BytesIO(contents)) as image:
            return np.asarray(image.convert("RGB"))

    def fast_decode_image(contents):
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
        return decode.apply_orientation(image, decode.exif_orientation(contents))

    decoders = {
        "fast DCT (tf.io.decode_jpeg default)": lambda c: tf.io.decode_jpeg(c, channels=3),
        "accurate DCT (INTEGER_ACCURATE)": lambda c: tf.io.decode_jpeg(
            c, channels=3, dct_method="INTEGER_ACCURATE"
        ),
        "data.decode_image (accurate + EXIF)": decode.decode_image,
        "fast DCT + EXIF (decode_image before)": fast_decode_image,
        "PIL": pil,
    }
    for size in args.sizes:
        width, height = (int(side) for side in size.split("x"))
        for subsampling, chroma in ((2, "4:2:0"), (0, "4:4:4")):
            contents = photo_jpeg(width, height, args.grain, subsampling)
            reference = pil(contents).astype(np.int16)
            fast = tf.io.decode_jpeg(contents, channels=3).numpy().astype(np.int16)
            error = np.abs(fast - reference)
            print(
                f"{width}x{height} {chroma}, {len(contents) / 1e6:.2f} MB: fast DCT vs PIL max "
                f"{error.max()} mean {error.mean():.2f} levels"
            )
            seconds = median_seconds(decoders, contents, args.repeats)
            for name, value in seconds.items():
                print(f"  {name:40s} {value * 1e3:9.2f} ms")
            fast_op, accurate_op, now, before, _ = seconds.values()
            for what, slow, quick in (
                ("decode op", accurate_op, fast_op),
                ("decode_image", now, before),
            ):
                print(
                    f"  {what}: accurate / fast {slow / quick:.3f} ({(slow - quick) * 1e3:+.2f} ms)"
                )


if __name__ == "__main__":
    main()
