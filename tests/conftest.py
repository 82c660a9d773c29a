"""Shared test fixtures: tiny datasets, image files, a tiny finished run; each built once per session."""

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


def require(available, what):
    """Skips a test whose tool is missing on a developer machine; fails it in CI (``CI`` set).

    Args:
        available: bool, whether the tool is there.
        what: str, what is missing, for the message.
    """
    if available:
        return
    message = f"{what} (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test process keeps what cyclegan_tf caches in its own folder, never the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CYCLEGAN_TF_CACHE", str(tmp_path_factory.mktemp("cyclegan_tf_cache")))
        yield


def built_once(tmp_path_factory, name, build):
    """A folder that ``build(folder)`` fills once per test session, whichever test process asks first.

    pytest-xdist runs a session fixture once in every test process that uses it. Folders that
    are only read afterwards are built under a file lock in the temporary folder all processes
    share, so the first process builds and the others wait for it and reuse the result.

    Args:
        tmp_path_factory: pytest's session ``tmp_path_factory``.
        name: str, the folder's name, unique among these folders.
        build: callable taking the folder's path (a str, an empty folder that exists).

    Returns:
        str, the folder's path.
    """
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-of-USER/pytest-N, above each process's popen-gwK
    folder, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir()
            build(str(folder))
            done.touch()
    return str(folder)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A tiny synthetic apples/oranges set: 64 px, 16 train and 8 test images per domain."""
    from cyclegan_tf.data.synthetic import write_synthetic_dataset

    def build(folder):
        write_synthetic_dataset(
            os.path.join(folder, "fruit"), size=64, n_train=16, n_test=8, seed=0
        )

    return os.path.join(built_once(tmp_path_factory, "synthetic", build), "fruit")


def _pattern(height=6, width=10):
    """An RGB pattern whose channels differ, so a swapped or dropped channel shows."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 25, y * 40, np.full_like(x, 100)], axis=-1).astype(np.uint8)


def _encode(image, fmt, **kwargs):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def pil_decode(contents):
    """What PIL (and so PyTorch's image loading) decodes from encoded bytes: ``uint8 [H, W, 3]``."""
    with Image.open(io.BytesIO(contents)) as image:
        return np.asarray(image.convert("RGB"))


def textured_jpeg(height, width, subsampling=2, mode="RGB", seed=0, **options):
    """JPEG bytes of a photo-like image: smooth colour areas under fine grain, as a camera makes.

    The grain gives every 8x8 block high-frequency coefficients, where libjpeg's fast and accurate
    inverse DCTs round differently, so a test on these bytes sees which one decoded them.

    Args:
        height: int.
        width: int.
        subsampling: int, PIL's chroma subsampling: 0 (4:4:4), 1 (4:2:2) or 2 (4:2:0, the default).
        mode: str, the PIL mode saved ("RGB", "L" for grayscale, "CMYK").
        seed: int, the random pattern.
        **options: more options of PIL's JPEG writer (``progressive=True``).
    """
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3), np.uint8))
    smooth = np.asarray(coarse.resize((width, height), Image.BICUBIC), np.float32)
    photo = np.clip(smooth + rng.normal(0, 12, smooth.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(photo).convert(mode)
    return _encode(image, "JPEG", quality=90, subsampling=subsampling, **options)


def _image_file_cases():
    """``{file name: (bytes, expected uint8 RGB, tolerance)}``, one per supported variant."""
    import tensorflow as tf

    rgb = _pattern()
    gray = rgb[..., 0]
    rgba = np.concatenate([rgb, (np.arange(60) * 4).reshape(6, 10, 1).astype(np.uint8)], -1)
    # 16-bit: 257 * v maps exactly to v in 8 bits.
    rgb16 = tf.io.encode_png(rgb.astype(np.uint16) * 257).numpy()
    y, x = np.mgrid[0:16, 0:16]
    smooth = np.stack([60 + 4 * x, 40 + 3 * y, np.full_like(x, 150)], -1).astype(np.uint8)
    blocks = np.zeros((8, 8, 3), np.uint8)
    blocks[:4, :4], blocks[:4, 4:], blocks[4:, :4], blocks[4:, 4:] = (
        (255, 0, 0),
        (0, 255, 0),
        (0, 0, 255),
        (250, 250, 250),
    )
    frames = [Image.fromarray(blocks), Image.fromarray(np.full((8, 8, 3), 30, np.uint8))]
    smooth_jpeg = _encode(Image.fromarray(smooth), "JPEG", quality=95, subsampling=0)
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    return {
        "rgb.png": (_encode(Image.fromarray(rgb), "PNG"), rgb, 0),
        "gray.png": (_encode(Image.fromarray(gray), "PNG"), np.repeat(gray[..., None], 3, -1), 0),
        "rgba.png": (_encode(Image.fromarray(rgba), "PNG"), rgb, 0),
        "rgb16.png": (rgb16, rgb, 0),
        "rgb.bmp": (_encode(Image.fromarray(rgb), "BMP"), rgb, 0),
        # A JPEG's reference is PIL's decode of the same bytes, which ours matches exactly.
        "smooth.JPG": (smooth_jpeg, pil_decode(smooth_jpeg), 0),
        "animated.gif": (gif, blocks, 0),
    }


@pytest.fixture
def image_files(tmp_path):
    """Writes ``_image_file_cases()`` to a folder; returns ``{name: (path, expected, tol)}``."""
    files = {}
    for name, (contents, expected, tolerance) in _image_file_cases().items():
        path = tmp_path / name
        path.write_bytes(contents)
        files[name] = (str(path), expected, tolerance)
    return files


# Training fixtures: a tiny, fast configuration on the synthetic set.
TINY_TRAIN_ARGS = (
    "--image-size",
    "32",
    "--load-size",
    "36",
    "--ngf",
    "4",
    "--ndf",
    "4",
    "--n-res-blocks",
    "1",
    "--batch-size",
    "2",
    "--epochs",
    "2",
    "--steps-per-epoch",
    "3",
    "--pool-size",
    "4",
    "--sample-every",
    "2",
    "--name",
    "apple2orange",
)


@pytest.fixture(scope="session")
def tiny_args(synthetic_dir):
    """``tiny_args(output_dir, export_dir)``: CLI arguments of a tiny training run."""

    def make(output_dir, export_dir):
        return [
            "--data-dir",
            synthetic_dir,
            *TINY_TRAIN_ARGS,
            "--output-dir",
            output_dir,
            "--export-dir",
            export_dir,
        ]

    return make


# What tiny_run adds to the tiny arguments: validation every epoch, FID and the best generator.
TINY_RUN_EVALUATION = ("--eval-every", "1", "--fid-every", "2", "--keep-best")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_args, weights_file):
    """A finished tiny training run with validation, FID and the best generator kept.

    Returns:
        ``(run_dir, export_dir)``.
    """
    from cyclegan_tf.cli import train as train_cli

    def build(folder):
        run, export_dir = os.path.join(folder, "run"), os.path.join(folder, "saved_models")
        argv = [*tiny_args(run, export_dir), *TINY_RUN_EVALUATION]
        assert train_cli.main([*argv, "--inception-weights", weights_file]) == 0

    root = built_once(tmp_path_factory, "tiny_run", build)
    return os.path.join(root, "run"), os.path.join(root, "saved_models")


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """What the docs tell offline users to make: InceptionV3(weights=None).save_weights(...)."""
    import keras

    def build(folder):
        keras.utils.set_random_seed(0)
        keras.applications.InceptionV3(weights=None).save_weights(
            os.path.join(folder, "inception_v3.weights.h5")
        )

    return os.path.join(built_once(tmp_path_factory, "inception", build), "inception_v3.weights.h5")


def jpeg_with_orientation(pixels, orientation, swap_byte_order=False):
    """A JPEG of ``pixels`` with an EXIF orientation tag (after a JFIF segment, as cameras write).

    PIL writes the EXIF block in one byte order; ``swap_byte_order`` rewrites it in the other
    ("II" little-endian and "MM" big-endian both occur in camera files).
    """
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "camera"  # another tag before it, so the orientation is not the first entry
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(buffer, "JPEG", quality=100, subsampling=0, exif=exif.tobytes())
    contents = buffer.getvalue()
    if not swap_byte_order:
        return contents
    start = contents.index(b"Exif\x00\x00") + 6
    order = "little" if contents[start : start + 2] == b"II" else "big"
    other = "big" if order == "little" else "little"

    def swap(offset, size):
        value = int.from_bytes(contents[start + offset : start + offset + size], order)
        return value.to_bytes(size, other)

    ifd = int.from_bytes(contents[start + 4 : start + 8], order)
    count = int.from_bytes(contents[start + ifd : start + ifd + 2], order)
    block = bytearray(contents[start:])
    block[:8] = (b"MM\x00*" if other == "big" else b"II*\x00") + swap(4, 4)
    block[ifd : ifd + 2] = swap(ifd, 2)
    for entry in range(count):
        at = ifd + 2 + 12 * entry
        tag = int.from_bytes(contents[start + at : start + at + 2], order)
        block[at : at + 8] = swap(at, 2) + swap(at + 2, 2) + swap(at + 4, 4)
        # A SHORT sits in the first two bytes of the value field; offsets fill all four.
        value = swap(at + 8, 2) + b"\x00\x00" if tag == 0x0112 else swap(at + 8, 4)
        block[at + 8 : at + 12] = value
    return contents[:start] + bytes(block)


@pytest.fixture(scope="session")
def crash_reference(tmp_path_factory, synthetic_dir):
    """The uninterrupted run of the crash harness's tiny command, and what it left.

    Returns:
        ``(root, outcome)``: the run is ``root/run``, its exports ``root/exports``; ``outcome`` a
        ``cyclegan_tf.tools.crash_sweep.Outcome`` to compare an interrupted and resumed run with.
    """
    from cyclegan_tf.cli import train as train_cli
    from cyclegan_tf.tools import crash_sweep

    def build(folder):
        assert train_cli.main(crash_sweep.tiny_argv(synthetic_dir, folder)) == 0

    root = built_once(tmp_path_factory, "crash_reference", build)
    return root, crash_sweep.outcome(root)


class ObjectiveRuns:
    """The crash harness's tiny command for each training objective, and its uninterrupted run.

    A CUT run also scores FID/KID at its last epoch and keeps the best generator (``--keep-best``).

    Args:
        tmp_path_factory: pytest's session ``tmp_path_factory`` (the references are built once).
        data_dir: str, the synthetic set.
        weights_file: str, the offline InceptionV3 weights for FID.
    """

    def __init__(self, tmp_path_factory, data_dir, weights_file):
        self.tmp_path_factory = tmp_path_factory
        self.data_dir = data_dir
        self.extra = {
            "cut": ("--fid-every", "2", "--keep-best", "--inception-weights", weights_file),
        }

    def argv(self, objective, root):
        """The command's arguments for a run of ``objective`` in ``root/run``."""
        from cyclegan_tf.tools import crash_sweep

        argv = crash_sweep.tiny_argv(self.data_dir, str(root), objective=objective)
        return [*argv, *self.extra.get(objective, ())]

    def reference(self, objective):
        """``(root, outcome)`` of the uninterrupted run of ``objective``, as ``crash_reference``."""
        from cyclegan_tf.cli import train as train_cli
        from cyclegan_tf.tools import crash_sweep

        def build(folder):
            assert train_cli.main(self.argv(objective, folder)) == 0

        root = built_once(self.tmp_path_factory, f"{objective}_reference", build)
        return root, crash_sweep.outcome(root)


@pytest.fixture(scope="session")
def objective_runs(tmp_path_factory, synthetic_dir, weights_file):
    """An ``ObjectiveRuns``: each objective's tiny command and its uninterrupted reference run."""
    return ObjectiveRuns(tmp_path_factory, synthetic_dir, weights_file)


def free_ports(count):
    """``count`` TCP ports on 127.0.0.1 that were free a moment ago."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def clip_frame(index, height, width):
    """Frame ``index`` of ``write_clip``'s clips: a bar moving right, a red corner at the top left."""
    frame = np.full((height, width, 3), 40, np.uint8)
    frame[:, (3 * index) % width : (3 * index) % width + 4] = (230, 230, 90)
    frame[:4, :4] = (255, 0, 0)
    return frame


def write_clip(
    path,
    frames=12,
    size=(32, 48),
    fps=10,
    audio="aac",
    rotation=0,
    pix_fmt="yuv420p",
    frame_gaps=None,
    codec="libx264",
):
    """Writes a tiny clip of ``clip_frame`` frames with PyAV, as a phone or an editor would.

    Args:
        path: str, the file; its ending picks the container (``.mp4 .mov .mkv .avi``).
        frames: int, the number of frames.
        size: ``(height, width)`` as stored (before the rotation).
        fps: int, the nominal frame rate.
        audio: str or None, the codec of a mono 440 Hz sine tone as long as the video
            (``"aac"``, ``"pcm_s16le"``...), or None for no sound.
        rotation: int, the display rotation in degrees counter-clockwise (a phone's portrait clip:
            -90, shown turned 90 degrees clockwise).
        pix_fmt: str, the video's pixel format (``"yuv444p"`` for odd sides, ``"yuv420p10le"``).
        frame_gaps: list of int or None, each frame's duration in milliseconds (a variable frame
            rate); None: ``1000 / fps`` each.
        codec: str, the video encoder (``"libvpx-vp9"`` for WebM).
    """
    import fractions

    import av

    time_base = fractions.Fraction(1, 1000)
    gaps = frame_gaps or [round(1000 / fps)] * frames
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=fps)
        video.height, video.width = size
        video.pix_fmt = pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = container.add_stream(audio, rate=8000)
            sound.layout = "mono"
        pts = 0
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(clip_frame(index, *size), format="rgb24")
            frame.pts, frame.time_base = pts, time_base
            pts += gaps[index]
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            seconds = np.arange(8 * pts) / 8000
            tone = (0.3 * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 8000, 0
            container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))
