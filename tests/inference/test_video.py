"""Video translation, checked by decoding what it wrote (tiny generated clips, see ``write_clip``)."""

import fractions
import os
import threading

import av
import numpy as np
import pytest

from cyclegan_tf.errors import MissingDependencyError
from cyclegan_tf.inference import KerasTranslator
from cyclegan_tf.inference.video import (
    FlickerMeter,
    TemporalSmoother,
    VideoError,
    translate_video,
)
from cyclegan_tf.models import resnet_generator
from tests.conftest import clip_frame, write_clip


class Identity:
    """A translator that returns its input: the clip's geometry and timing are then easy to check."""

    def __init__(self, images_per_call=None):
        self.batches = []
        self._images_per_call = images_per_call

    def images_per_call(self, height, width, limit):
        return self._images_per_call or limit

    def translate_pixels(self, images):
        self.batches.append(len(images))
        return np.asarray(images, np.float32)


def decode(path):
    """What a player sees: frames (RGB), their start times, the frame rate, the audio's codec."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        audio_seconds = (
            float(container.streams.audio[0].duration * container.streams.audio[0].time_base)
            if audio
            else None
        )
        frames, times, rotation = [], [], 0
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.pts * frame.time_base))
            rotation = frame.rotation
        return {
            "frames": frames,
            "times": times,
            "rate": float(video.average_rate),
            "duration": float(container.duration / 1e6),
            "codec": video.codec_context.name,
            "pix_fmt": video.codec_context.pix_fmt,
            "audio": audio,
            "audio_seconds": audio_seconds,
            "rotation": rotation,
        }


def close(a, b, levels=4.0):
    """Equal but for H.264's loss (mean absolute difference in 255 levels)."""
    return a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() < levels


def test_phone_clip_comes_out_upright_with_its_timing_and_sound(tmp_path):
    source = tmp_path / "phone.mp4"
    write_clip(source, frames=12, fps=10, audio="aac", rotation=-90)
    result = translate_video(Identity(), str(source), str(tmp_path / "out.mp4"), progress=False)

    written, original = decode(tmp_path / "out.mp4"), decode(source)
    assert (result.frames, result.width, result.height, result.audio) == (12, 32, 48, "copied")
    assert len(written["frames"]) == 12 and written["rate"] == original["rate"] == 10
    assert written["codec"] == "h264" and written["pix_fmt"] == "yuv420p"
    assert abs(written["duration"] - original["duration"]) <= 1 / 10
    assert written["times"] == pytest.approx(original["times"])
    assert written["audio"] == "aac" and abs(written["audio_seconds"] - 1.2) < 0.15
    assert written["rotation"] == 0  # the pixels are upright; no player turns them again
    for stored, shown in zip(original["frames"], written["frames"]):
        assert close(shown, np.rot90(stored, -1))  # -90: turned clockwise, as players show it
    assert shown[:4, -4:, 0].mean() > 200  # the red corner went from top left to top right


def test_odd_sides_ten_bits_and_pcm_sound(tmp_path):
    source = tmp_path / "camera.mov"
    write_clip(source, size=(31, 47), audio="pcm_s16le", pix_fmt="yuv444p10le")
    result = translate_video(Identity(), str(source), str(tmp_path / "out.mp4"), progress=False)

    written = decode(tmp_path / "out.mp4")
    assert (result.width, result.height, result.audio) == (48, 32, "re-encoded")
    assert written["audio"] == "aac" and len(written["frames"]) == 12
    assert close(written["frames"][5][:31, :47], clip_frame(5, 31, 47))
    assert close(written["frames"][5][31:], written["frames"][5][30:31])  # a repeated last row


@pytest.mark.parametrize(
    "name, codec, audio, how",
    [
        ("old.avi", "libx264", "mp3", "re-encoded"),  # MP4 takes MP3, but not as an AVI holds it
        ("web.webm", "libvpx-vp9", "libopus", "re-encoded"),
        ("edit.mkv", "libx264", "aac", "copied"),
    ],
)
def test_each_container_keeps_its_sound(tmp_path, name, codec, audio, how):
    source = tmp_path / name
    write_clip(source, frames=6, codec=codec, audio=audio)
    result = translate_video(Identity(), str(source), str(tmp_path / "out.mp4"), progress=False)
    written = decode(tmp_path / "out.mp4")
    assert result.audio == how and written["audio"] == "aac" and len(written["frames"]) == 6
    assert 0.5 < written["audio_seconds"] < 0.9  # 0.6 s of tone, and the codecs' padding


def test_variable_frame_rate_keeps_every_timestamp_without_audio(tmp_path):
    gaps = [40, 40, 120, 40, 200, 40, 40, 80]
    source = tmp_path / "vfr.mkv"
    write_clip(source, frames=8, audio=None, frame_gaps=gaps)
    result = translate_video(Identity(), str(source), str(tmp_path / "out.mp4"), progress=False)

    assert result.audio == "none" and result.frames == 8
    assert decode(tmp_path / "out.mp4")["times"] == pytest.approx(decode(source)["times"], abs=1e-3)
    assert decode(tmp_path / "out.mp4")["audio"] is None


def test_frames_are_batched_as_the_translator_allows_and_side_by_side(tmp_path):
    source = tmp_path / "clip.mp4"
    write_clip(source, frames=10, audio=None)
    translator = Identity(images_per_call=4)
    translate_video(
        translator,
        str(source),
        str(tmp_path / "out.mp4"),
        compare_output=str(tmp_path / "out_compare.mp4"),
        progress=False,
    )
    assert translator.batches == [4, 4, 2]
    pair = decode(tmp_path / "out_compare.mp4")["frames"][3]
    assert pair.shape == (32, 96, 3) and close(pair[:, :48], pair[:, 48:])


class Recording:
    """Wraps a translator and keeps the float translations it returns, before they are encoded."""

    def __init__(self, translator):
        self.translator = translator
        self.outputs = []

    def __getattr__(self, name):
        return getattr(self.translator, name)

    def translate_pixels(self, images):
        outputs = np.asarray(self.translator.translate_pixels(images))
        self.outputs.extend(outputs)
        return outputs


def test_frames_over_the_memory_budget_run_tiled_with_the_whole_result(tmp_path):
    source = tmp_path / "clip.mp4"
    write_clip(source, frames=6, audio=None)
    generator = resnet_generator(ngf=4, n_res_blocks=1)
    whole = Recording(KerasTranslator(generator, max_memory_gb=8))
    tiled = Recording(KerasTranslator(generator, max_memory_gb=0.5))  # below the runtime alone
    assert not whole.tiles(32, 48) and tiled.tiles(32, 48)
    assert whole.images_per_call(32, 48, 8) == 8 and tiled.images_per_call(32, 48, 8) == 1
    for name, translator in (("whole", whole), ("tiled", tiled)):
        translate_video(translator, str(source), str(tmp_path / f"{name}.mp4"), progress=False)
    assert tiled.translator.last_tiled_run is not None
    # The translations agree to a hundredth of a level; the encoded clips only within H.264's loss
    # (a frame whose pixel rounds the other way is encoded with other decisions from there on).
    assert len(whole.outputs) == len(tiled.outputs) == 6
    np.testing.assert_allclose(np.stack(tiled.outputs), np.stack(whole.outputs), atol=0.01)
    for a, b in zip(
        decode(tmp_path / "whole.mp4")["frames"], decode(tmp_path / "tiled.mp4")["frames"]
    ):
        assert close(a, b)


def test_flicker_ratio_and_smoothing():
    meter = FlickerMeter()
    steady = np.full((4, 4, 3), 100, np.uint8)
    for index in range(4):
        source = steady + np.uint8(index)  # the input changes by 1 level a frame
        meter.add(source, steady + np.uint8(3 * (index % 2)))  # the output pumps by 3
    assert meter.ratio == pytest.approx(3.0)

    smoother = TemporalSmoother(0.75)
    still, moved = np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8)
    moved[0, 0] = 255  # one pixel of the input changes a lot
    assert (smoother(still, np.full_like(still, 200)) == 200).all()
    smoothed = smoother(moved, np.full_like(still, 40))
    assert smoothed[0, 0, 0] == 40  # a moving pixel takes the new translation
    assert smoothed[1, 1, 0] == 160  # a still one keeps 3/4 of the previous output
    assert (TemporalSmoother(0)(moved, still) == still).all()


def test_smoothing_lowers_the_flicker_ratio(tmp_path):
    source = tmp_path / "clip.mp4"
    write_clip(source, frames=12, audio=None)

    class Pumping(Identity):
        def translate_pixels(self, images):
            self.batches.append(len(images))
            brightness = 20.0 * (len(self.batches) % 2)  # every other frame brighter
            return np.clip(np.asarray(images, np.float32) + brightness, 0, 255)

    ratios = [
        translate_video(
            Pumping(images_per_call=1),
            str(source),
            str(tmp_path / f"out{strength}.mp4"),
            temporal_smoothing=strength,
            progress=False,
        ).flicker_ratio
        for strength in (0.0, 0.8)
    ]
    assert ratios[0] > 1.5 and ratios[1] < 0.6 * ratios[0], ratios


def test_ctrl_c_leaves_no_partial_output_and_no_thread(tmp_path):
    source = tmp_path / "clip.mp4"
    write_clip(source, frames=12)

    class Interrupted(Identity):
        def translate_pixels(self, images):
            if self.batches:
                raise KeyboardInterrupt
            return super().translate_pixels(images)

    folder = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        translate_video(
            Interrupted(images_per_call=2),
            str(source),
            str(folder / "clip.mp4"),
            compare_output=str(folder / "clip_compare.mp4"),
            progress=False,
        )
    assert os.listdir(folder) == []
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("video-")]


def _truncated(path):
    write_clip(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_after_its_index(path):
    """A download cut short: the index (``moov``) first, as streaming sites write, then 60 % of the data."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        video = container.add_stream("libx264", rate=10)
        video.height, video.width, video.pix_fmt = 64, 96, "yuv420p"
        noise = np.random.default_rng(0)
        for _ in range(20):
            pixels = noise.integers(0, 256, (64, 96, 3), np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode(None))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


def _corrupt(path):
    write_clip(path)
    data = bytearray(path.read_bytes())
    data[32:] = np.random.default_rng(0).integers(0, 256, len(data) - 32, np.uint8).tobytes()
    path.write_bytes(bytes(data))


def _not_a_video(path):
    path.write_text("meeting notes, not a video\n")


def _sound_only(path):
    with av.open(str(path), "w") as container:
        sound = container.add_stream("aac", rate=8000)
        sound.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), "flt", "mono")
        chunk.sample_rate, chunk.pts = 8000, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))


def _unknown_codec(path):
    """An AVI whose video codec (its FourCC) no decoder knows, as a proprietary camera codec."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mjpeg", rate=fractions.Fraction(12))
        video.height, video.width, video.pix_fmt = 32, 48, "yuvj420p"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(clip_frame(index, 32, 48), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    path.write_bytes(path.read_bytes().replace(b"MJPG", b"QZ42"))


BAD_CLIPS = {
    "truncated.mp4": (_truncated, "cannot read video"),
    "download.mp4": (_truncated_after_its_index, "is corrupt or truncated"),
    "corrupt.mp4": (_corrupt, "cannot read video"),
    "notes.mp4": (_not_a_video, "cannot read video"),
    "sound.mp4": (_sound_only, "is not a video: it has no video stream"),
    "camera.avi": (_unknown_codec, "no decoder"),
}


@pytest.mark.parametrize("name", sorted(BAD_CLIPS))
def test_a_bad_clip_is_one_line_naming_it_and_leaves_nothing(tmp_path, name):
    make, message = BAD_CLIPS[name]
    source = tmp_path / name
    make(source)
    folder = tmp_path / "out"
    with pytest.raises(VideoError) as error:
        translate_video(Identity(), str(source), str(folder / "x.mp4"), progress=False)
    text = str(error.value)
    assert message in text and str(source) in text and "\n" not in text, text
    assert not folder.exists() or os.listdir(folder) == []


def test_without_pyav_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "av", None)
    with pytest.raises(MissingDependencyError, match=r"\[video\] extra"):
        translate_video(Identity(), str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"))
