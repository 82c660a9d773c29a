"""The ``tf.data`` pipelines: the reference's jitter for training, plain resizing for evaluation.

Images come in as ``uint8 [H, W, 3]`` (see ``sources``) and leave as ``float32`` in [-1, 1], the
range of the generators' ``tanh`` outputs.

Reference:
    Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
    Networks", ICCV 2017; the official PyTorch code's ``--preprocess resize_and_crop``
    (``data/base_dataset.py``): resize to ``load_size`` (bicubic), random crop ``crop_size``,
    random horizontal flip, normalize with mean 0.5 and std 0.5.
"""

import math

import numpy as np
import tensorflow as tf


def _check_image_size(image_size):
    if not isinstance(image_size, int) or image_size < 4 or image_size % 4:
        raise ValueError(
            "image_size must be a positive multiple of 4 (the generators downsample twice). "
            f"Received: image_size={image_size!r}"
        )


def _check_sizes(image_size, load_size):
    _check_image_size(image_size)
    if not isinstance(load_size, int) or load_size < image_size:
        raise ValueError(
            "load_size must be an integer >= image_size (images are resized to load_size, then "
            f"cropped to image_size). Received: image_size={image_size!r}, load_size={load_size!r}"
        )


def _check_batch_size(batch_size):
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(
            f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
        )


def _to_unit_range(image):
    """[0, 255] floats → [-1, 1], as ``Normalize((0.5,) * 3, (0.5,) * 3)`` after ``ToTensor``."""
    return image / 127.5 - 1.0


def preprocess_train(image, image_size, load_size, seed=None):
    """Resizes to ``load_size``, crops ``image_size`` at random, flips at random, scales to [-1, 1].

    Args:
        image: ``uint8`` tensor ``[H, W, 3]``.
        image_size: int, side of the random crop (a multiple of 4).
        load_size: int, side the image is first resized to (>= ``image_size``).
        seed: None, or an int tensor of shape ``[2]``: the seed of the stateless crop and flip,
            so the same seed gives the same output, eagerly or in ``tf.data``. None draws one
            from the global random generator.

    Returns:
        ``float32`` tensor ``[image_size, image_size, 3]`` in [-1, 1].

    Raises:
        ValueError: if the sizes are not valid.
    """
    _check_sizes(image_size, load_size)
    if seed is None:
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    image = tf.image.resize(image, [load_size, load_size], method="bicubic")
    # The reference's PIL resize returns uint8: bicubic overshoot is clipped and values rounded.
    image = tf.round(tf.clip_by_value(image, 0.0, 255.0))
    image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], seed=crop_seed)
    image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return _to_unit_range(image)


def preprocess_eval(image, image_size):
    """Resizes to ``image_size`` × ``image_size`` and scales to [-1, 1]; no randomness.

    Args:
        image: ``uint8`` tensor ``[H, W, 3]``.
        image_size: int, the output side (a multiple of 4).

    Returns:
        ``float32`` tensor ``[image_size, image_size, 3]`` in [-1, 1].

    Raises:
        ValueError: if ``image_size`` is not a positive multiple of 4.
    """
    _check_image_size(image_size)
    # Antialiased so that large photographs shrink without aliasing (PIL does the same).
    image = tf.image.resize(image, [image_size, image_size], method="bicubic", antialias=True)
    image = tf.round(tf.clip_by_value(image, 0.0, 255.0))
    return tf.ensure_shape(_to_unit_range(image), [image_size, image_size, 3])


def _derived_seeds(seed, count):
    """``count`` independent 31-bit seeds from one (``np.random.SeedSequence``)."""
    return [int(s) >> 1 for s in np.random.SeedSequence(seed).generate_state(count)]


def _jittered(domain, image_size, load_size, shuffle_seed, jitter_seed, start):
    """One domain: cached decoded images, reshuffled every pass, repeated, jittered.

    The stream is a pure function of the seeds: its element ``k`` is the same whether the stream
    starts at 0 or at ``start <= k``.
    """
    # Caching before the jitter keeps decoding out of every epoch after the first.
    images = domain.images.cache()
    images = images.shuffle(domain.num_examples, seed=shuffle_seed, reshuffle_each_iteration=True)
    # Skipping happens before the jitter, on cached images: cheap even after many epochs.
    images = images.repeat().skip(start).enumerate(start=start)

    def jitter(index, image):
        example_seed = tf.stack([tf.constant(jitter_seed, tf.int64), index])
        return preprocess_train(image, image_size, load_size, seed=example_seed)

    return images.map(jitter, num_parallel_calls=tf.data.AUTOTUNE)


def make_train_dataset(
    domain_a,
    domain_b,
    image_size=256,
    load_size=286,
    batch_size=1,
    seed=0,
    steps_per_epoch=None,
    start_epoch=0,
):
    """The infinite training stream of unpaired ``(real_a, real_b)`` batches.

    Each domain is cached after decoding, shuffled on its own (with its own seed, reshuffled
    every pass), repeated and jittered (``preprocess_train``, one stateless seed per example),
    so the same ``seed`` gives the same batches. The two streams are zipped, batched with
    ``drop_remainder=True`` and prefetched. As in the reference, an epoch is
    ``ceil(max(|A|, |B|) / batch_size)`` steps.

    Args:
        domain_a: ``DomainData``, domain A.
        domain_b: ``DomainData``, domain B.
        image_size: int, the training crop (a multiple of 4). Defaults to 256.
        load_size: int, the resize before the crop (>= ``image_size``). Defaults to 286.
        batch_size: int, images per domain per batch. Defaults to 1.
        seed: int, seed of the shuffles and the jitter. Defaults to 0.
        steps_per_epoch: int or None, overrides the steps of an epoch.
        start_epoch: int, the first epoch the stream yields: a run resumed at epoch ``e`` sees
            the batches the uninterrupted run saw from epoch ``e`` on (same seed and sizes).
            Defaults to 0.

    Returns:
        ``(dataset, steps_per_epoch)``: the dataset yields ``(real_a, real_b)``, each
        ``float32 [batch_size, image_size, image_size, 3]`` in [-1, 1].

    Raises:
        ValueError: if a size, ``batch_size``, ``steps_per_epoch`` or ``start_epoch`` is out
            of range.

    Example:
        ```python
        domain_a, domain_b = sources.load_domains("synthetic", split="train")
        dataset, steps = make_train_dataset(domain_a, domain_b, image_size=128, load_size=143)
        model.fit(dataset, steps_per_epoch=steps, epochs=200)
        ```
    """
    _check_sizes(image_size, load_size)
    _check_batch_size(batch_size)
    if steps_per_epoch is None:
        steps_per_epoch = math.ceil(max(domain_a.num_examples, domain_b.num_examples) / batch_size)
    elif not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
        raise ValueError(
            f"steps_per_epoch must be a positive integer or None. Received: {steps_per_epoch!r}"
        )
    if not isinstance(start_epoch, int) or start_epoch < 0:
        raise ValueError(
            f"start_epoch must be a non-negative integer. Received: start_epoch={start_epoch!r}"
        )
    start = start_epoch * steps_per_epoch * batch_size  # Images each domain has given so far.
    shuffle_a, jitter_a, shuffle_b, jitter_b = _derived_seeds(seed, 4)
    real_a = _jittered(domain_a, image_size, load_size, shuffle_a, jitter_a, start)
    real_b = _jittered(domain_b, image_size, load_size, shuffle_b, jitter_b, start)
    dataset = tf.data.Dataset.zip((real_a, real_b))
    dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return dataset, steps_per_epoch


def _evaluated(domain, image_size, length):
    images = domain.images.map(
        lambda image: preprocess_eval(image, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    if domain.num_examples < length:
        images = images.repeat()
    return images.take(length)


def make_eval_dataset(domain_a, domain_b, image_size=256, batch_size=1):
    """A finite, ordered stream of ``(real_a, real_b)`` batches for evaluation.

    Both domains are resized to ``image_size`` (``preprocess_eval``) and paired in file order.
    The stream is as long as the longer domain: the shorter one starts over from its first image,
    so every image of both domains is seen once or more. The last batch may be smaller.

    Args:
        domain_a: ``DomainData``, domain A.
        domain_b: ``DomainData``, domain B.
        image_size: int, the side of the images (a multiple of 4). Defaults to 256.
        batch_size: int, pairs per batch. Defaults to 1.

    Returns:
        ``tf.data.Dataset`` of ``(real_a, real_b)``, each ``float32 [b, image_size,
        image_size, 3]`` in [-1, 1] with ``b <= batch_size``;
        ``ceil(max(|A|, |B|) / batch_size)`` batches.

    Raises:
        ValueError: if ``image_size`` or ``batch_size`` is out of range.
    """
    _check_image_size(image_size)
    _check_batch_size(batch_size)
    length = max(domain_a.num_examples, domain_b.num_examples)
    dataset = tf.data.Dataset.zip(
        (_evaluated(domain_a, image_size, length), _evaluated(domain_b, image_size, length))
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
    _check_image_size(image_size)
    _check_batch_size(batch_size)
    images = domain.images.map(
        lambda image: preprocess_eval(image, image_size), num_parallel_calls=tf.data.AUTOTUNE
    )
    return images.batch(batch_size).prefetch(tf.data.AUTOTUNE)
