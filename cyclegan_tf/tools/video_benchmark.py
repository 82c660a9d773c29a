"""Measuring video translation: generated test clips, frames per second, and flicker.

``write_test_clip`` draws a clip of any length and size that looks like a camera's: a textured still
scene, a disc moving across it, sensor noise and a slightly pumping exposure, with a sine tone.
``measure_speed`` times ``translate_video`` once warm; ``measure_flicker`` translates a clip at
several ``temporal_smoothing`` strengths and reports each flicker ratio and how far each output is
from the per-frame one. Peak memory is measured on the command itself (``/usr/bin/time -v
cyclegan-translate ...``, see docs/performance.md).
"""

import fractions
import os
import tempfile

import numpy as np

from cyclegan_tf.inference import load_translator
from cyclegan_tf.inference.video import require_av, translate_video

_AUDIO_RATE = 48000
_NOISE_LEVELS = 4.0  # the sensor noise's standard deviation, of 255 levels
_EXPOSURE_LEVELS = 2.0  # the exposure's frame-to-frame wobble, of 255 levels


def _scene(height, width, rng):
    """The still part of the clip: smooth colour gradients and a few flat shapes."""
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    columns = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    channels = [90 + 80 * rows * columns, 120 + 60 * columns, 160 - 70 * rows]
    scene = np.stack([np.broadcast_to(c, (height, width)) for c in channels], axis=-1)
    for _ in range(6):
        top, left = rng.integers(0, height), rng.integers(0, width)
        scene[top : top + height // 5, left : left + width // 6] = rng.uniform(30, 230, 3)
    return scene


class _Frames:
    """The frames of a test clip: the scene, the moving disc, noise and exposure (fast to draw)."""

    _NOISE_FRAMES = 8  # noise patterns drawn once and cycled: drawing each costs more than encoding

    def __init__(self, height, width, frames, rng):
        self._scene = _scene(height, width, rng)
        self._noise = [
            rng.normal(0, _NOISE_LEVELS, (height, width, 3)).astype(np.float32)
            for _ in range(self._NOISE_FRAMES)
        ]
        self._frames = frames
        self._rng = rng
        self._radius = max(2, height // 8)
        span = np.arange(-self._radius, self._radius + 1)
        self._disc = span[:, None] ** 2 + span[None, :] ** 2 < self._radius**2

    def __call__(self, index):
        height, width = self._scene.shape[:2]
        frame = self._scene + self._noise[index % self._NOISE_FRAMES]
        frame += self._rng.normal(0, _EXPOSURE_LEVELS)
        center_x = int(index / max(self._frames - 1, 1) * (width + 2 * self._radius)) - self._radius
        top, left = height // 2 - self._radius, center_x - self._radius
        rows = slice(max(top, 0), min(top + self._disc.shape[0], height))
        columns = slice(max(left, 0), min(left + self._disc.shape[1], width))
        if columns.start < columns.stop:
            mask = self._disc[
                rows.start - top : rows.stop - top, columns.start - left : columns.stop - left
            ]
            frame[rows, columns][mask] = (220, 120, 40)
        return np.clip(frame, 0, 255).astype(np.uint8)


def write_test_clip(path, seconds, height, width, fps=30, seed=0, preset="ultrafast"):
    """Writes a camera-like H.264 MP4 with a sine tone (see the module docstring).

    Args:
        path: str, a local ``.mp4`` file.
        seconds: float, the length.
        height: int, even.
        width: int, even.
        fps: int, frames per second. Defaults to 30.
        seed: int, the seed of the scene and the noise. Defaults to 0.
        preset: str, x264's speed preset. Defaults to ``"ultrafast"`` (long clips are quick to make).

    Returns:
        int, the number of frames written.
    """
    av = require_av()
    rng = np.random.default_rng(seed)
    frames = max(1, round(seconds * fps))
    draw = _Frames(height, width, frames, rng)
    with av.open(path, "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": preset, "crf": "20"})
        video.height, video.width, video.pix_fmt = height, width, "yuv420p"
        sound = container.add_stream("aac", rate=_AUDIO_RATE)
        sound.layout = "mono"
        samples_per_frame = _AUDIO_RATE // fps
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(draw(index), format="rgb24")
            picture.pts, picture.time_base = index, fractions.Fraction(1, fps)
            container.mux(video.encode(picture))
            start = index * samples_per_frame
            times = (start + np.arange(samples_per_frame)) / _AUDIO_RATE
            tone = (0.2 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)[None]
            chunk = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = _AUDIO_RATE, start
            container.mux(sound.encode(chunk))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    return frames


def measure_speed(model_path, clip, precision="float32", max_memory_gb=4.0):
    """Frames per second of ``translate_video`` on ``clip``, timed on a second run (warm).

    Returns:
        dict: ``frames``, ``seconds``, ``fps``, ``width``, ``height``, ``tiled`` (whether the frames
        ran on the tiled engine).
    """
    translator = load_translator(model_path, max_memory_gb, precision)
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "out.mp4")
        translate_video(translator, clip, output, progress=False)
        result = translate_video(translator, clip, output, progress=False)
    tiles = getattr(translator, "tiles", None)
    return {
        "frames": result.frames,
        "seconds": round(result.seconds, 2),
        "fps": round(result.throughput, 3),
        "width": result.width,
        "height": result.height,
        "tiled": bool(tiles and tiles(result.height, result.width)),
    }


def measure_flicker(model_path, clip, strengths=(0.0, 0.5, 0.8), max_memory_gb=4.0):
    """The flicker ratio of ``clip``'s translation at each ``temporal_smoothing`` strength.

    Returns:
        list of dict: ``strength``, ``flicker_ratio``, and ``from_per_frame``: the mean absolute
        difference (255 levels) between that output and the per-frame one (strength 0), over all
        pixels and over the pixels where the input moved (a change above 16 levels).
    """
    av = require_av()
    translator = load_translator(model_path, max_memory_gb)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        outputs = {}
        for strength in strengths:
            outputs[strength] = os.path.join(folder, f"{strength}.mp4")
            result = translate_video(
                translator, clip, outputs[strength], temporal_smoothing=strength, progress=False
            )
            rows.append({"strength": strength, "flicker_ratio": round(result.flicker_ratio, 3)})
        reference = outputs[strengths[0]]
        inputs = _frames(av, clip)
        moving = [np.zeros(inputs[0].shape[:2], bool)] + [
            np.abs(b.astype(int) - a.astype(int)).mean(-1) > 16 for a, b in zip(inputs, inputs[1:])
        ]
        for row in rows:
            pairs = list(zip(_frames(av, reference), _frames(av, outputs[row["strength"]])))
            differences = [np.abs(a.astype(int) - b.astype(int)).mean(-1) for a, b in pairs]
            row["from_per_frame"] = round(float(np.mean(differences)), 2)
            row["from_per_frame_moving"] = round(
                float(np.mean([d[m].mean() for d, m in zip(differences, moving) if m.any()])), 2
            )
    return rows


def _frames(av, path):
    with av.open(path) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
