"""Translating video files: decoding, batched translation and encoding at once, in bounded memory.

``translate_video(translator, source, output)`` reads a clip with PyAV (FFmpeg's libraries, the
``[video]`` extra), translates every frame with a translator of ``load_translator`` (a ``.keras``
generator, a SavedModel or an export, whole or tiled as for photos) and writes an H.264 MP4 (yuv420p)
with the source's frames and timestamps, so the same frame count, frame rate and duration (variable
frame rates included), and its sound: the audio stream copied where MP4 holds its codec, else
re-encoded to AAC.

Three stages run at once, joined by queues a few batches long, so memory does not grow with the
clip's length: a reading thread demuxes and decodes (each frame turned upright as its display rotation
says, as a photo is turned by its EXIF orientation), the calling thread translates frames in batches
(as many as the translator's memory budget allows), and a writing thread encodes and muxes. The MP4 is
written under a temporary name and renamed when complete (``io.atomic_output``): an interrupted or
failed clip leaves no file.

Translated one by one, frames flicker: each frame's instance-norm statistics and noise shift its
colours a little. ``VideoResult.flicker_ratio`` measures it, and ``temporal_smoothing`` lowers it by
blending each output frame with the previous one where the input did not change (``TemporalSmoother``).
"""

import dataclasses
import fractions
import io as bytes_io
import queue
import sys
import threading
import time

import keras
import numpy as np

from cyclegan_tf import io
from cyclegan_tf.errors import first_line, require

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".avi")
OUTPUT_EXTENSION = ".mp4"
# Frames per translator call at most; fewer where the translator's memory budget says so.
DEFAULT_MAX_BATCH = 8
# Audio codecs an MP4 holds as they are; others (PCM, Vorbis, Opus...) are re-encoded to AAC.
_MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3"})
_AAC_SAMPLE_RATES = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
    11025,
    8000,
)
_AAC_BIT_RATE = 192_000
# x264's constant-quality setting: 18 is visually lossless for most content (its default is 23).
_X264_OPTIONS = {"crf": "18", "preset": "medium"}
# Frame rate and time base assumed where a container gives none.
_FALLBACK_RATE = fractions.Fraction(25)
# FFmpeg's AVCOL_SPC_UNSPECIFIED: a stream that does not say which YUV matrix it uses.
_UNSPECIFIED = 2
# FFmpeg's BT.709 colour space, primaries and transfer (all 1), and the limited range (AVCOL_RANGE_MPEG).
_BT709 = 1
_MPEG_RANGE = 1
# How long a stage waits on a queue before it checks whether the others stopped (seconds).
_POLL_SECONDS = 0.1


class VideoError(ValueError):
    """A clip that cannot be translated; the message is one line that names the file."""


def require_av():
    """Imports PyAV; ``MissingDependencyError`` naming the ``[video]`` extra where it is missing."""
    return require("av", "Video translation")


def is_video_file(name):
    """Whether a file name has one of ``VIDEO_EXTENSIONS`` (case-insensitive)."""
    return name.lower().endswith(VIDEO_EXTENSIONS)


@dataclasses.dataclass
class VideoResult:
    """What ``translate_video`` wrote.

    Attributes:
        source: str, the input clip.
        output: str, the MP4 written.
        frames: int, frames written (as many as were decoded).
        width: int, the output's width (the upright frame's, made even).
        height: int, the output's height.
        frame_rate: float, the source's average frame rate (frames per second).
        duration: float, seconds from the first frame's start to the last frame's end.
        audio: str, ``"copied"``, ``"re-encoded"`` or ``"none"``.
        flicker_ratio: float or None, the mean absolute difference between consecutive output
            frames over the same for the input frames (None below two frames or for a still clip).
        seconds: float, the wall-clock time the translation took.
        compare_output: str or None, the side-by-side MP4 (original | translation).
        declared_frames: int or None, the frame count the container declares, where it differs
            from ``frames`` (a truncated clip, or an edit list that hides frames).
    """

    source: str
    output: str
    frames: int
    width: int
    height: int
    frame_rate: float
    duration: float
    audio: str
    flicker_ratio: float | None
    seconds: float
    compare_output: str | None = None
    declared_frames: int | None = None

    @property
    def throughput(self):
        """float, frames translated per second of wall-clock time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class FlickerMeter:
    """The flicker ratio of a clip: how much more consecutive output frames differ than input ones.

    1 means the translation changes from frame to frame as much as the input does; above 1 it adds
    flicker (a still scene whose translated colours pump), below 1 it calms the input.
    """

    def __init__(self):
        self._previous = None
        self._input_change = 0.0
        self._output_change = 0.0

    def add(self, source, translated):
        """Counts one frame: ``uint8`` arrays ``[H, W, 3]`` of the input and the output."""
        if self._previous is not None and self._previous[0].shape == source.shape:
            self._input_change += _mean_absolute_difference(source, self._previous[0])
            self._output_change += _mean_absolute_difference(translated, self._previous[1])
        self._previous = (source, translated)

    @property
    def ratio(self):
        """The ratio (a float); None before two frames or while the input never changed."""
        return self._output_change / self._input_change if self._input_change > 0 else None


def _mean_absolute_difference(a, b):
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


class TemporalSmoother:
    """Blends each translated frame with the previous output where the input frame did not change.

    ``out_t = translated_t + w * (out_{t-1} - translated_t)`` per pixel, with
    ``w = strength * max(0, 1 - change / threshold)`` and ``change`` the mean absolute difference of
    the input pixel from the previous input frame. Still parts of the scene average over about
    ``1 / (1 - strength)`` frames, which removes the brightness pumping of per-frame instance norm;
    a pixel whose input changes by ``threshold`` levels or more takes the new translation as it is,
    so moving things leave no trail.

    Args:
        strength: float in [0, 1): 0 gives the per-frame translation unchanged.
        threshold: float, the input change (of 255 levels) above which a pixel is not blended.
            Defaults to 16.
    """

    def __init__(self, strength, threshold=16.0):
        check_temporal_smoothing(strength)
        self.strength = float(strength)
        self.threshold = float(threshold)
        self._previous = None

    def __call__(self, source, translated):
        """Returns the smoothed ``uint8`` output frame for ``uint8`` ``source`` and ``translated``."""
        if self.strength == 0:
            return translated
        source_values = source.astype(np.float32)
        output = translated.astype(np.float32)
        if self._previous is not None and self._previous[0].shape == source.shape:
            previous_source, previous_output = self._previous
            change = np.mean(np.abs(source_values - previous_source), axis=-1, keepdims=True)
            weight = self.strength * np.clip(1.0 - change / self.threshold, 0.0, 1.0)
            output += weight * (previous_output - output)
        self._previous = (source_values, output)
        return np.clip(np.round(output), 0, 255).astype(np.uint8)


def check_temporal_smoothing(strength):
    """Returns ``strength`` as a float; ``ValueError`` unless it is in [0, 1)."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0 <= value < 1:
        raise ValueError(
            f"temporal_smoothing must be in [0, 1) (0: per-frame). Received: {strength!r}"
        )
    return value


@dataclasses.dataclass
class _Frame:
    """A decoded frame, upright, with its timing in the video stream's time base."""

    pixels: np.ndarray
    pts: int
    duration: int


class _Stop(Exception):
    """Another stage stopped: this one ends quietly."""


def _put(items, item, stop):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            items.put(item, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            continue


def _get(items, stop):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return items.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            continue


class _Stage(threading.Thread):
    """A thread that runs ``work`` and keeps the exception that ended it; it stops the others."""

    def __init__(self, name, work, stop):
        super().__init__(name=name, daemon=True)
        self._work = work
        self._stop_event = stop
        self.error = None

    def run(self):
        try:
            self._work()
        except _Stop:
            pass
        except BaseException as error:  # handed to the calling thread, which raises it
            self.error = error
            self._stop_event.set()


def _upright(frame):
    """A decoded ``av.VideoFrame`` as an upright ``uint8 [H, W, 3]`` RGB array.

    The frame's display matrix (``rotation``: degrees counter-clockwise, as phones record a
    portrait clip) is applied, as EXIF orientation is for photos. The YUV matrix is the one the
    stream declares; an untagged stream gets BT.709 from 720 lines up, BT.601 below, as players do.
    """
    colorspace = None  # the one the frame declares
    if frame.colorspace == _UNSPECIFIED:
        colorspace = "ITU709" if frame.height >= 720 else "ITU601"
    pixels = frame.to_ndarray(
        format="rgb24", src_colorspace=colorspace, src_color_range=frame.color_range or None
    )
    turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(pixels, turns)) if turns else pixels


def _even(pixels):
    """Pads an odd height or width by repeating the last row or column (H.264's yuv420p needs even)."""
    height, width = pixels.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return pixels
    return np.pad(pixels, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


class _Source:
    """An opened clip: its video stream, its first audio stream and how the audio goes to an MP4."""

    def __init__(self, av, path, shown_path):
        self.path = shown_path
        try:
            self.container = av.open(path, "r")
        except av.error.FFmpegError as error:
            raise VideoError(f"cannot read video {shown_path}: {_reason(error)}") from None
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise VideoError(f"cannot read video {shown_path}: {first_line(error)}") from None
        try:
            self._check(av)
        except BaseException:
            self.container.close()
            raise

    def _check(self, av):
        still = av.stream.Disposition.attached_pic  # a cover image (music files), not a video
        videos = [s for s in self.container.streams.video if not s.disposition & still]
        if not videos:
            raise VideoError(f"{self.path} is not a video: it has no video stream")
        self.video = videos[0]
        if self.video.codec_context is None:
            raise VideoError(
                f"cannot decode video {self.path}: its video codec has no decoder in this FFmpeg build"
            )
        self.video.thread_type = "AUTO"
        audios = [s for s in self.container.streams.audio if s.codec_context is not None]
        self.audio = audios[0] if audios else None
        if self.audio is None:
            self.audio_mode = "none"
        elif _mp4_takes_as_it_is(av, self.audio):
            self.audio_mode = "copied"
        else:
            self.audio_mode = "re-encoded"
        self.time_base = self.video.time_base or fractions.Fraction(1, 90000)
        self.frame_rate = (
            self.video.average_rate
            or self.video.guessed_rate
            or self.video.base_rate
            or _FALLBACK_RATE
        )
        self.frame_ticks = max(1, round(1 / (self.frame_rate * self.time_base)))
        self.declared_frames = self.video.frames or None

    def estimated_frames(self):
        """The declared frame count, else the duration times the frame rate (None if neither is known)."""
        if self.declared_frames:
            return self.declared_frames
        if self.video.duration:
            return max(1, round(self.video.duration * self.time_base * self.frame_rate))
        if self.container.duration:
            return max(1, round(self.container.duration / 1e6 * self.frame_rate))
        return None

    def read(self, emit):
        """Demuxes and decodes the clip, calling ``emit(("video", _Frame))`` and ``emit(("audio", x))``.

        ``x`` is a packet to copy or a decoded frame to re-encode.
        """
        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        last_pts = None
        for packet in self.container.demux(streams):
            if packet.stream.index != self.video.index:
                if self.audio_mode == "copied":
                    if packet.dts is not None:
                        emit(("audio", packet))
                else:
                    for frame in packet.decode():
                        emit(("audio", frame))
                continue
            if packet.is_corrupt:
                raise VideoError(f"{self.path} is corrupt or truncated (a damaged video packet)")
            for frame in packet.decode():
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:
                    pts = 0 if last_pts is None else last_pts + self.frame_ticks
                if last_pts is not None and pts <= last_pts:
                    pts = last_pts + 1
                last_pts = pts
                emit(("video", _Frame(_upright(frame), pts, frame.duration or self.frame_ticks)))

    def close(self):
        self.container.close()


def _mp4_takes_as_it_is(av, stream):
    """Whether ``stream``'s packets go into an MP4 unchanged.

    Its codec must be one players read in MP4, and FFmpeg's MP4 muxer must write a header for it
    (it refuses an AVI's MP3 track, for one).
    """
    if stream.codec_context.codec.canonical_name not in _MP4_AUDIO_CODECS:
        return False
    try:
        with av.open(bytes_io.BytesIO(), "w", format="mp4") as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except av.error.FFmpegError:
        return False
    return True


def _reason(error):
    """The human part of an FFmpeg error: ``"Invalid data found when processing input"``."""
    return getattr(error, "strerror", None) or first_line(error)


class _Output:
    """One MP4 being written: an H.264 stream of a fixed size, and the source's audio."""

    def __init__(self, av, path, source, width, height):
        self.container = av.open(path, "w", format="mp4")
        video = self.container.add_stream(
            "libx264", rate=source.frame_rate, options=dict(_X264_OPTIONS)
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = source.time_base
        video.codec_context.time_base = source.time_base
        # Tagged as the frames are converted (``write_frame``): BT.709, limited ("MPEG") range.
        video.codec_context.colorspace = _BT709
        video.codec_context.color_primaries = _BT709
        video.codec_context.color_trc = _BT709
        video.codec_context.color_range = _MPEG_RANGE
        self.video = video
        self.audio = None
        self.audio_mode = source.audio_mode
        if source.audio_mode == "copied":
            self.audio = self.container.add_stream_from_template(source.audio)
        elif source.audio_mode == "re-encoded":
            decoded = source.audio.codec_context
            rate = decoded.sample_rate if decoded.sample_rate in _AAC_SAMPLE_RATES else 48000
            self.audio = self.container.add_stream("aac", rate=rate)
            self.audio.layout = "stereo" if decoded.channels >= 2 else "mono"
            self.audio.bit_rate = _AAC_BIT_RATE

    def write_frame(self, av, pixels, frame):
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        picture = picture.reformat(
            format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
        )
        picture.pts, picture.duration = frame.pts, frame.duration
        picture.time_base = self.video.codec_context.time_base
        self.container.mux(self.video.encode(picture))

    def write_audio(self, payload):
        if self.audio_mode == "copied":
            payload.stream = self.audio
            self.container.mux(payload)
        else:
            self.container.mux(self.audio.encode(payload))

    def finish(self):
        self.container.mux(self.video.encode(None))
        if self.audio_mode == "re-encoded":
            self.container.mux(self.audio.encode(None))
        self.container.close()

    def abandon(self):
        try:
            self.container.close()
        except Exception:  # the file is deleted unfinished anyway
            pass


class _Writer:
    """The writing stage: smoothing, the flicker measure, even sides, encoding and muxing."""

    def __init__(self, av, source, paths, temporal_smoothing):
        self._av = av
        self._source = source
        self._paths = paths
        self._outputs = []
        self._pending_audio = []
        self._smoother = TemporalSmoother(temporal_smoothing)
        self.flicker = FlickerMeter()
        self.frames = 0
        self.size = None
        self.first_pts = None
        self.end_pts = None

    def work(self, items, stop):
        try:
            while True:
                kind, payload = _get(items, stop)
                if kind == "end":
                    for output in self._outputs:
                        output.finish()
                    self._outputs = []
                    return
                if kind == "audio":
                    if self._outputs:
                        for output in self._outputs:
                            output.write_audio(payload)
                    else:
                        self._pending_audio.append(payload)
                else:
                    self._write_frame(*payload)
        finally:
            for output in self._outputs:
                output.abandon()

    def _write_frame(self, frame, translated):
        translated = self._smoother(frame.pixels, translated)
        self.flicker.add(frame.pixels, translated)
        pictures = [_even(translated)]
        if len(self._paths) > 1:
            pictures.append(_even(np.concatenate([frame.pixels, translated], axis=1)))
        if not self._outputs:
            self.size = pictures[0].shape[1], pictures[0].shape[0]
            for path, picture in zip(self._paths, pictures):
                height, width = picture.shape[:2]
                self._outputs.append(_Output(self._av, path, self._source, width, height))
            for payload in self._pending_audio:
                for output in self._outputs:
                    output.write_audio(payload)
            self._pending_audio = []
        for output, picture in zip(self._outputs, pictures):
            output.write_frame(self._av, picture, frame)
        self.frames += 1
        self.first_pts = frame.pts if self.first_pts is None else self.first_pts
        self.end_pts = frame.pts + frame.duration


def translate_video(
    translator,
    source,
    output,
    compare_output=None,
    temporal_smoothing=0.0,
    max_batch=DEFAULT_MAX_BATCH,
    progress=True,
):
    """Translates a video file into an H.264 MP4 with the same frames, timing and sound.

    Every frame is translated at its own size (upright, as the stream's rotation says); an output
    side of odd length gains one repeated row or column (yuv420p needs even sides). The first
    audio stream is copied where MP4 holds its codec (AAC, MP3, ALAC, AC-3) and re-encoded to AAC
    otherwise. Frames go through ``translator`` in batches that fit its memory budget; a frame too
    large for the budget whole is translated tiled by ``KerasTranslator``. Nothing is written at
    ``output`` (or ``compare_output``) unless the whole clip was translated.

    Args:
        translator: from ``cyclegan_tf.inference.load_translator`` (anything with
            ``translate_pixels``; ``images_per_call(height, width, limit)`` where it has one).
        source: str, the clip (``.mp4 .mov .mkv .webm .avi``; local, ``gs://``, ``ram://``).
        output: str, the MP4 to write.
        compare_output: str or None, also write a side-by-side MP4 (original | translation).
        temporal_smoothing: float in [0, 1), see ``TemporalSmoother``. Defaults to 0: each frame
            exactly as translated alone.
        max_batch: int, frames per translator call at most. Defaults to 8.
        progress: bool, show a progress bar (frames, frames per second, time left).

    Returns:
        A ``VideoResult``.

    Raises:
        VideoError: for a file that is not a readable, decodable video (one line naming it).
        MissingDependencyError: without the ``[video]`` extra.
        ValueError: for a translator of other images than RGB (videos are RGB).
    """
    av = require_av()
    check_temporal_smoothing(temporal_smoothing)
    channels = (getattr(translator, "channels", 3), getattr(translator, "output_channels", 3))
    if channels != (3, 3):
        raise ValueError(
            f"{source}: videos are translated by RGB generators; this one maps {channels[0]} "
            f"channel(s) to {channels[1]}"
        )
    started = time.monotonic()
    with io.local_copy(source) as local_source:
        clip = _Source(av, local_source, source)
        try:
            with io.atomic_output(output) as written:
                paths = [written]
                if compare_output is None:
                    writer = _run(
                        av, clip, translator, paths, temporal_smoothing, max_batch, progress
                    )
                else:
                    with io.atomic_output(compare_output) as compare_written:
                        paths.append(compare_written)
                        writer = _run(
                            av, clip, translator, paths, temporal_smoothing, max_batch, progress
                        )
        finally:
            clip.close()
    width, height = writer.size
    return VideoResult(
        source=source,
        output=output,
        frames=writer.frames,
        width=width,
        height=height,
        frame_rate=float(clip.frame_rate),
        duration=float((writer.end_pts - writer.first_pts) * clip.time_base),
        audio=clip.audio_mode,
        flicker_ratio=writer.flicker.ratio,
        seconds=time.monotonic() - started,
        compare_output=compare_output,
        declared_frames=(
            clip.declared_frames
            if clip.declared_frames and clip.declared_frames != writer.frames
            else None
        ),
    )


def _run(av, clip, translator, paths, temporal_smoothing, max_batch, progress):
    """Runs the three stages over one clip; returns the finished ``_Writer``."""
    stop = threading.Event()
    decoded = queue.Queue(maxsize=2 * max_batch)
    translated = queue.Queue(maxsize=2 * max_batch)
    writer = _Writer(av, clip, paths, temporal_smoothing)

    def read():
        clip.read(lambda item: _put(decoded, item, stop))
        _put(decoded, ("end", None), stop)

    reading = _Stage("video-read", read, stop)
    writing = _Stage("video-write", lambda: writer.work(translated, stop), stop)
    bar = _ProgressBar(clip.estimated_frames()) if progress else None
    reading.start()
    writing.start()
    try:
        for batch, audio in _batches(decoded, stop, translator, max_batch):
            for payload in audio:
                _put(translated, ("audio", payload), stop)
            if not batch:
                continue
            outputs = _translate_batch(translator, batch, clip.path)
            for frame, pixels in zip(batch, outputs):
                _put(translated, ("video", (frame, pixels)), stop)
            if bar is not None:
                bar.add(len(batch))
        _put(translated, ("end", None), stop)
        writing.join()
    except _Stop:
        pass
    finally:
        stop.set()
        reading.join()
        writing.join()
    for stage in (reading, writing):
        if stage.error is not None:
            raise _as_video_error(stage.error, clip.path)
    if writer.frames == 0:
        raise VideoError(f"{clip.path} has no frames that decode")
    if bar is not None:
        bar.finish(writer.frames)
    return writer


def _as_video_error(error, path):
    """A stage's exception as what ``translate_video`` raises (FFmpeg's errors as ``VideoError``)."""
    if isinstance(error, VideoError) or not _is_ffmpeg_error(error):
        return error
    return VideoError(f"cannot translate video {path}: {_reason(error)}")


def _is_ffmpeg_error(error):
    return any(cls.__module__.startswith("av.") for cls in type(error).__mro__)


def _batches(decoded, stop, translator, max_batch):
    """Yields ``(frames, audio)``: up to a batch of same-size frames, and the audio read meanwhile."""
    frames, audio, limit = [], [], None
    while True:
        kind, payload = _get(decoded, stop)
        if kind == "end":
            yield frames, audio
            return
        if kind == "audio":
            audio.append(payload)
            continue
        if frames and payload.pixels.shape != frames[0].pixels.shape:
            yield frames, audio
            frames, audio, limit = [], [], None
        if limit is None:
            limit = _images_per_call(translator, *payload.pixels.shape[:2], max_batch)
        frames.append(payload)
        if len(frames) >= limit:
            yield frames, audio
            frames, audio = [], []


def _images_per_call(translator, height, width, max_batch):
    images_per_call = getattr(translator, "images_per_call", None)
    if images_per_call is None:
        return 1
    return max(1, min(max_batch, images_per_call(height, width, max_batch)))


def _translate_batch(translator, frames, path):
    """``uint8`` translations of a batch of frames; a translator's refusal names the clip."""
    images = np.stack([frame.pixels for frame in frames])
    try:
        outputs = translator.translate_pixels(images)
    except ValueError as error:
        raise VideoError(f"cannot translate video {path}: {first_line(error)}") from None
    return np.clip(np.round(np.asarray(outputs)), 0, 255).astype(np.uint8)


class _ProgressBar:
    """Frames done, frames per second and the time left, as a Keras progress bar."""

    def __init__(self, total):
        # Live on a terminal; one line at the end otherwise (a log).
        self._bar = keras.utils.Progbar(
            total,
            unit_name="frame",
            stateful_metrics=["fps"],
            verbose=1 if sys.stdout.isatty() else 2,
        )
        self._done = 0
        self._started = time.monotonic()

    def add(self, count):
        self._done += count
        if self._bar.target is not None and self._done >= self._bar.target:
            self._bar.target = self._done + 1  # an estimate that fell short; finish() ends it
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._bar.update(self._done, values=[("fps", self._done / elapsed)])

    def finish(self, frames):
        self._bar.target = frames
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._bar.update(frames, values=[("fps", frames / elapsed)], finalize=True)
