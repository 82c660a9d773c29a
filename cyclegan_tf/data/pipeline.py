"""The ``tf.data`` pipelines: the reference's jitter for training, plain resizing for evaluation.

Images come in as files or ``uint8 [H, W, 3]`` (see ``sources``) and leave as ``float32`` in
[-1, 1], the range of the generators' ``tanh`` outputs.

The training stream holds no more than a bounded cache, whatever the number and resolution of the
source images. Per domain, in this order:

1. position ``k`` of the stream (a counter that starts at the first step's position) → pass
   ``k // n`` and slot ``k % n`` → image index, through a stateless exact permutation of the ``n``
   images, seeded per pass (``tf.random.experimental.index_shuffle``);
2. the index's image resized as ``preprocess`` says (``preprocess.Preprocess``: to ``load_size``
   by default) from the cache (``cache``: memory, disk or none), else its file decoded
   (DCT-downscaled when much larger, ``decode.decode_to_shape``), resized as PIL does and stored;
   several at once, in order;
3. random crop (unless the mode has none) and flip seeded by ``(seed, k)``, scaled to [-1, 1].

Element ``k`` is a pure function of the seed, ``k`` and the files: starting at any step costs
nothing (no skipped image is decoded) and gives the batches the uninterrupted run gave. A file
that fails to decode is replaced by the image at the next slot of the same pass (fixed by the
seed, so still a pure function), with one warning per file. With an ``input_context`` the stream
holds only its input pipeline's slice of every global batch, so workers read disjoint images.

Reference:
    Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
    Networks", ICCV 2017; the official PyTorch code's ``--preprocess`` (``data/base_dataset.py``),
    by default ``resize_and_crop``: resize to ``load_size`` (bicubic), random crop ``crop_size``,
    random horizontal flip, normalize with mean 0.5 and std 0.5.
"""

import contextlib
import logging
import math
import re
import threading

import numpy as np
import tensorflow as tf

from cyclegan_tf import pixels
from cyclegan_tf.data import cache as cache_lib
from cyclegan_tf.data.decode import (
    DataError,
    decode_image,
    decode_to_shape,
    resize_like_pil,
    to_channels,
)
from cyclegan_tf.data.preprocess import Preprocess

logger = logging.getLogger(__name__)

# Later slots of the same pass that may stand in for a file that fails to decode.
_SUBSTITUTES = 8
# Starts the stream's error when no image of a row of substitutes can be used.
_UNUSABLE = "no usable image: none of"


@contextlib.contextmanager
def explained_stream_errors():
    """Turns the training stream's "no usable image" failure into a one-line ``DataError``.

    Wrap the loop that reads the stream (``model.fit``): the failure surfaces there as a
    ``tf.errors.InvalidArgumentError`` carrying TensorFlow's node and iterator details.

    Raises:
        DataError: naming the problem and the first file of the unusable row.
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        found = re.search(r"\[(" + _UNUSABLE + r"[^\]]*)\] \[([^\]]*)\]", error.message or "")
        if not found:
            raise
        raise DataError(f"{found.group(1)} {found.group(2)}") from None


def _check_batch_size(batch_size):
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(
            f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
        )


def preprocess_train(image, image_size, load_size, seed=None, preprocess="resize_and_crop"):
    """One training image as the ``preprocess`` mode makes it: resize, random crop and flip.

    By default resizes to ``load_size``, crops ``image_size`` at random, flips at random and scales
    to [-1, 1]. The resize is PIL's bicubic (antialiased when shrinking,
    ``decode.resize_like_pil``), as in the reference.

    Args:
        image: ``uint8`` tensor ``[H, W, 3]``.
        image_size: int, side of the random crop (a multiple of 4).
        load_size: int, side (or width, in the ``scale_width`` modes) the image is first resized to
            (>= ``image_size``; unused by ``crop`` and ``none``).
        seed: None, or an int tensor of shape ``[2]``: the seed of the stateless crop and flip,
            so the same seed gives the same output, eagerly or in ``tf.data``. None draws one
            from the global random generator.
        preprocess: str, one of ``preprocess.PREPROCESS_MODES``. Defaults to
            ``"resize_and_crop"``.

    Returns:
        ``float32`` tensor in [-1, 1]: ``[image_size, image_size, 3]``, or the resized image's
        own size in the ``scale_width`` and ``none`` modes.

    Raises:
        ValueError: if the mode or the sizes are not valid.
    """
    geometry = Preprocess(preprocess, load_size, image_size)
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    resized = resize_like_pil(image, geometry.stored_shape(tf.shape(image)))
    with tf.control_dependencies([geometry.check_stored(resized)]):
        return geometry.jitter(resized, seed)


def preprocess_eval(image, image_size):
    """Resizes to ``image_size`` × ``image_size`` and scales to [-1, 1]; no randomness.

    Args:
        image: ``uint8`` tensor ``[H, W, C]``.
        image_size: int, the output side (a multiple of 4).

    Returns:
        ``float32`` tensor ``[image_size, image_size, C]`` in [-1, 1].

    Raises:
        ValueError: if ``image_size`` is not a positive multiple of 4.
    """
    pixels.check_size_multiple("image_size", image_size)
    # Antialiased so that large photographs shrink without aliasing (PIL does the same).
    image = tf.image.resize(image, [image_size, image_size], method="bicubic", antialias=True)
    image = tf.round(tf.clip_by_value(image, 0.0, 255.0))
    shape = [image_size, image_size, image.shape[-1]]
    return tf.ensure_shape(pixels.to_model_range(image), shape)


def _derived_seeds(seed, count):
    """``count`` independent 31-bit seeds from one (``np.random.SeedSequence``)."""
    return [int(s) >> 1 for s in np.random.SeedSequence(seed).generate_state(count)]


class _SubstitutionReport:
    """Logs, once per file, that a file could not be used in the stream and what replaced it.

    Called from ``tf.data`` threads through ``tf.numpy_function``, only when a file fails.
    """

    def __init__(self, files):
        self._files = files
        self._reported = set()
        self._lock = threading.Lock()

    def __call__(self, failed, used):
        failed, used = int(failed), int(used)
        with self._lock:
            if failed in self._reported:
                return np.int64(0)
            self._reported.add(failed)
            count = len(self._reported)
        logger.warning(
            "Could not use %s while training (it does not decode, or is smaller than image_size); "
            "%s stands in for it (the next image of the "
            "seeded order, the same in every run). %d file(s) of this domain failed so far.",
            self._files[failed],
            self._files[used],
            count,
        )
        return np.int64(0)


def _domain_stream(domain, positions, geometry, shuffle_seed, jitter_seed, store):
    """One domain: positions → shuffled indices → cached or decoded resized images → jitter."""
    num_images = domain.num_examples
    paths = tf.constant(domain.files, dtype=tf.string)
    substitutes = min(_SUBSTITUTES, num_images)
    report = _SubstitutionReport(domain.files)

    def candidates_at(position):
        """The index of the image at ``position``, then those that may stand in for it."""
        epoch, slot = position // num_images, position % num_images
        slots = (slot + tf.range(substitutes, dtype=tf.int64)) % num_images
        seed = tf.stack([tf.constant(shuffle_seed, tf.int64), epoch])
        return tf.random.experimental.index_shuffle(
            slots, seed, tf.constant(num_images - 1, tf.int64)
        )

    def load(index):
        found, cached = store.lookup(index)

        def decode():
            contents = tf.io.read_file(paths[index])
            image = decode_to_shape(contents, geometry.stored_shape, geometry.channels)
            with tf.control_dependencies([geometry.check_stored(image)]):
                stored = store.insert(index, image)
            with tf.control_dependencies([stored]):
                return tf.identity(image)

        return index, tf.cond(found, lambda: cached, decode)

    def all_failed(candidates):
        message = (
            f"{_UNUSABLE} {substitutes} images in a row of the shuffled order could be used "
            f"(unreadable, smaller than image_size={geometry.crop_size} on a side, or a full or "
            "unwritable cache), from"
        )
        check = tf.debugging.Assert(False, [message, paths[candidates[0]]])
        with tf.control_dependencies([check]):
            return tf.constant(-1, tf.int64), tf.zeros(
                [geometry.crop_size, geometry.crop_size, geometry.channels], tf.uint8
            )

    def first_readable(position):
        candidates = candidates_at(position)
        attempts = tf.data.Dataset.from_tensor_slices(candidates).map(load).ignore_errors()
        last_resort = tf.data.Dataset.from_tensors(candidates).map(all_failed)
        return (
            attempts.concatenate(last_resort)
            .take(1)
            .map(lambda used, image: (position, candidates[0], used, image))
        )

    def jitter(position, wanted, used, image):
        reported = tf.cond(
            tf.equal(wanted, used),
            lambda: tf.constant(0, tf.int64),
            lambda: tf.numpy_function(report, [wanted, used], tf.int64, stateful=True),
        )
        with tf.control_dependencies([reported]):
            seed = tf.stack([tf.constant(jitter_seed, tf.int64), position])
            return geometry.jitter(image, seed)

    # One small dataset per position, read several at once and yielded in order: a file that
    # fails only affects its own position.
    images = positions.interleave(
        first_readable, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return images.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)


def _shard_positions(first_step, global_batch, shards, shard):
    """Stream positions of one input pipeline: its slice of every global batch, from a step.

    Step ``s`` takes positions ``[s * global_batch, (s + 1) * global_batch)``; shard ``i`` of
    ``shards`` keeps the ``i``-th of ``shards`` equal slices, so the shards are disjoint and
    together make the unsharded stream.
    """
    per_shard = global_batch // shards

    def position(local):
        step, offset = local // per_shard, local % per_shard
        return step * global_batch + shard * per_shard + offset

    return tf.data.Dataset.counter(first_step * per_shard).map(position)


def _check_domain_files(domain, label):
    if domain.files is None:
        raise ValueError(
            f"domain {label} has no files: the training pipeline reads images from files by "
            "index (load it with sources.load_folder, load_image_folder or load_tfds). "
            f"Received: DomainData with files=None and {domain.num_examples} images"
        )


def epoch_steps(domain_a, domain_b, batch_size=1, steps_per_epoch=None):
    """Steps of a training epoch: ``ceil(max(|A|, |B|) / batch_size)`` as in the reference.

    Args:
        domain_a: ``DomainData`` of domain A.
        domain_b: ``DomainData`` of domain B.
        batch_size: int, the global batch. Defaults to 1.
        steps_per_epoch: int or None, an override, returned as it is once checked.

    Raises:
        ValueError: if ``steps_per_epoch`` is given and not a positive integer.
    """
    if steps_per_epoch is None:
        return math.ceil(max(domain_a.num_examples, domain_b.num_examples) / batch_size)
    if not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
        raise ValueError(
            f"steps_per_epoch must be a positive integer or None. Received: {steps_per_epoch!r}"
        )
    return steps_per_epoch


def make_train_dataset(
    domain_a,
    domain_b,
    image_size=256,
    load_size=286,
    batch_size=1,
    seed=0,
    steps_per_epoch=None,
    start_epoch=0,
    *,
    start_step=None,
    cache="auto",
    cache_dir=None,
    memory_budget=cache_lib.DEFAULT_MEMORY_BUDGET,
    input_context=None,
    preprocess="resize_and_crop",
    channels=(3, 3),
):
    """The infinite training stream of unpaired ``(real_a, real_b)`` batches.

    Each domain is read by index in an exact permutation per pass (its own seed), decoded and
    resized as ``preprocess`` says (to ``load_size`` by default) in parallel, cached after the
    resize as ``cache`` says, and jittered (random crop and flip seeded per stream position), so the same ``seed`` gives the same batches
    whatever the cache, and a run can start at any step without decoding what it skips (see the
    module docstring). The two streams are zipped, batched with ``drop_remainder=True`` and
    prefetched. As in the reference, an epoch is ``ceil(max(|A|, |B|) / batch_size)`` steps.

    Args:
        domain_a: ``DomainData`` with ``files``, domain A.
        domain_b: ``DomainData`` with ``files``, domain B.
        image_size: int, the training crop (a multiple of 4). Defaults to 256.
        load_size: int, the resize before the crop (>= ``image_size``; the width in the
            ``scale_width`` modes, unused by ``crop`` and ``none``). Defaults to 286.
        batch_size: int, the global batch: images per domain per step over all replicas.
            Defaults to 1.
        seed: int, seed of the shuffles and the jitter. Defaults to 0.
        steps_per_epoch: int or None, overrides the steps of an epoch.
        start_epoch: int, the first epoch the stream yields (``start_step`` becomes
            ``start_epoch * steps_per_epoch``). Defaults to 0.
        start_step: int or None, the first step the stream yields: a run resumed at step ``s``
            sees the batches the uninterrupted run saw from step ``s`` on (same seed, sizes and
            files). Excludes a nonzero ``start_epoch``.
        cache: str, where resized images are kept: ``"auto"`` (memory when both domains fit
            ``memory_budget``, else none), ``"memory"``, ``"disk"`` (under ``cache_dir``) or
            ``"none"``. Defaults to ``"auto"``.
        cache_dir: str or None, the folder of the disk cache (``cache="disk"``).
        memory_budget: int, bytes of resized images ``cache="auto"`` may keep in memory.
            Defaults to 1 GiB.
        input_context: ``tf.distribute.InputContext`` or None. When given (by
            ``strategy.distribute_datasets_from_function``), the stream holds only this input
            pipeline's slice of each global batch, in per-replica batches.
        preprocess: str, one of ``preprocess.PREPROCESS_MODES`` (the reference's
            ``--preprocess``). ``scale_width`` and ``none`` keep each image's own size and need
            ``batch_size=1``. Defaults to ``"resize_and_crop"``.
        channels: ``(channels_a, channels_b)``, each 1, 3 or 4: the images of each domain as
            PIL converts them (``decode.to_channels``). Defaults to ``(3, 3)``.

    Returns:
        ``(dataset, steps_per_epoch)``: the dataset yields ``(real_a, real_b)``, each
        ``float32 [b, image_size, image_size, C]`` in [-1, 1] (``[1, H, W, C]`` of each image's
        own size in the ``scale_width`` and ``none`` modes); ``b`` is ``batch_size``, or the
        per-replica batch with ``input_context``; ``C`` the domain's channels.

    Raises:
        ValueError: if the mode, a size, ``batch_size``, ``steps_per_epoch``, ``start_epoch``,
            ``start_step`` or ``cache`` is out of range, a domain has no files, or the batch
            does not split over the input pipelines.

    Example:
        ```python
        domain_a, domain_b = sources.load_domains("synthetic", split="train")
        dataset, steps = make_train_dataset(domain_a, domain_b, image_size=128, load_size=143)
        model.fit(dataset, steps_per_epoch=steps, epochs=200)
        ```
    """
    geometries = [Preprocess(preprocess, load_size, image_size, c) for c in channels]
    geometry = geometries[0]
    _check_batch_size(batch_size)
    if geometry.variable_size and batch_size != 1:
        raise ValueError(
            f"preprocess={preprocess!r} keeps each image's own size, so batches hold one image. "
            f"Received: batch_size={batch_size}"
        )
    _check_domain_files(domain_a, "A")
    _check_domain_files(domain_b, "B")
    steps_per_epoch = epoch_steps(domain_a, domain_b, batch_size, steps_per_epoch)
    if not isinstance(start_epoch, int) or start_epoch < 0:
        raise ValueError(
            f"start_epoch must be a non-negative integer. Received: start_epoch={start_epoch!r}"
        )
    if start_step is None:
        start_step = start_epoch * steps_per_epoch
    elif not isinstance(start_step, int) or start_step < 0 or start_epoch:
        raise ValueError(
            "start_step must be a non-negative integer, given without start_epoch. "
            f"Received: start_step={start_step!r}, start_epoch={start_epoch!r}"
        )
    shards, shard, batch = 1, 0, batch_size
    if input_context is not None:
        shards, shard = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch = input_context.get_per_replica_batch_size(batch_size)
        if batch_size % shards:
            raise ValueError(
                f"batch_size must split over the {shards} input pipelines. "
                f"Received: batch_size={batch_size}"
            )
    mode = cache_lib.resolve_cache_mode(
        cache,
        domain_a.num_examples + domain_b.num_examples,
        None
        if geometry.stored_image_bytes() is None
        else max(g.stored_image_bytes() for g in geometries),
        memory_budget,
    )
    seeds = _derived_seeds(seed, 4)
    streams = []
    for domain, domain_geometry, shuffle_seed, jitter_seed in (
        (domain_a, geometries[0], *seeds[:2]),
        (domain_b, geometries[1], *seeds[2:]),
    ):
        key = domain.fingerprint or "\0".join(domain.files)
        store = cache_lib.make_store(
            mode, domain_geometry.cache_key, cache_dir, key, domain_geometry.channels
        )
        streams.append(
            _domain_stream(
                domain,
                _shard_positions(start_step, batch_size, shards, shard),
                domain_geometry,
                shuffle_seed,
                jitter_seed,
                store,
            )
        )
    dataset = tf.data.Dataset.zip(tuple(streams))
    dataset = dataset.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if input_context is not None:
        options = tf.data.Options()
        # The stream already holds only this pipeline's slice; sharding it again would drop data.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset, steps_per_epoch


def domain_images(domain, channels=3):
    """A domain's ``uint8`` images with ``channels`` channels (``decode.to_channels``).

    Decoded from its files where it has them (an RGBA image keeps its alpha); otherwise its
    (RGB) ``images`` converted.
    """
    if channels == 3:
        return domain.images
    if domain.files is not None:
        files = tf.data.Dataset.from_tensor_slices(tf.constant(domain.files, tf.string))
        return files.map(
            lambda path: decode_image(tf.io.read_file(path), channels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return domain.images.map(lambda image: to_channels(image, channels))


def _evaluated(domain, image_size, length, channels):
    images = domain_images(domain, channels).map(
        lambda image: preprocess_eval(image, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    if domain.num_examples < length:
        images = images.repeat()
    return images.take(length)


def make_eval_dataset(domain_a, domain_b, image_size=256, batch_size=1, channels=(3, 3)):
    """A finite, ordered stream of ``(real_a, real_b)`` batches for evaluation.

    Both domains are resized to ``image_size`` (``preprocess_eval``) and paired in file order.
    The stream is as long as the longer domain: the shorter one starts over from its first image,
    so every image of both domains is seen once or more. The last batch may be smaller.

    Args:
        domain_a: ``DomainData``, domain A.
        domain_b: ``DomainData``, domain B.
        image_size: int, the side of the images (a multiple of 4). Defaults to 256.
        batch_size: int, pairs per batch. Defaults to 1.
        channels: ``(channels_a, channels_b)``, each 1, 3 or 4. Defaults to ``(3, 3)``.

    Returns:
        ``tf.data.Dataset`` of ``(real_a, real_b)``, each ``float32 [b, image_size,
        image_size, C]`` in [-1, 1] with ``b <= batch_size``;
        ``ceil(max(|A|, |B|) / batch_size)`` batches.

    Raises:
        ValueError: if ``image_size`` or ``batch_size`` is out of range.
    """
    pixels.check_size_multiple("image_size", image_size)
    _check_batch_size(batch_size)
    length = max(domain_a.num_examples, domain_b.num_examples)
    dataset = tf.data.Dataset.zip(
        tuple(
            _evaluated(domain, image_size, length, count)
            for domain, count in zip((domain_a, domain_b), channels)
        )
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def make_translate_dataset(domain, image_size=256, batch_size=1):
    """A finite, ordered stream of one domain's images, resized to ``image_size``.

    Args:
        domain: ``DomainData``; its ``names`` (if any) are in the same order.
        image_size: int, the side of the images (a multiple of 4). Defaults to 256.
        batch_size: int, images per batch. Defaults to 1.

    Returns:
        ``tf.data.Dataset`` of ``float32 [b, image_size, image_size, 3]`` in [-1, 1],
        ``b <= batch_size``.

    Raises:
        ValueError: if ``image_size`` or ``batch_size`` is out of range.
    """
    pixels.check_size_multiple("image_size", image_size)
    _check_batch_size(batch_size)
    images = domain.images.map(
        lambda image: preprocess_eval(image, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return images.batch(batch_size).prefetch(tf.data.AUTOTUNE)
