"""InceptionV3 pool features of images, the inputs of FID and KID, with an optional per-folder cache.

Features are the 2048 outputs of ``keras.applications.InceptionV3(include_top=False,
pooling="avg")`` on images resized to 299×299 (bilinear, antialiased) and scaled with
``keras.applications.inception_v3.preprocess_input``. They are close to, but not the same as, the
TF 2015 Inception graph of the original FID code and clean-fid's: compare numbers made by the same
tool.
"""

import hashlib
import io as bytes_io
import json
import logging
import warnings

import keras
import numpy as np
import tensorflow as tf

from cyclegan_tf import io
from cyclegan_tf.data.decode import read_image_file
from cyclegan_tf.errors import OptionError, first_line

logger = logging.getLogger(__name__)

INCEPTION_SIZE = 299
FEATURE_DIM = 2048
IMAGENET = "imagenet"
# The file ``keras.applications.InceptionV3(include_top=False, weights="imagenet")`` downloads; it
# is fetched the same way, into the same ``~/.keras/models`` cache.
IMAGENET_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + IMAGENET_NOTOP_FILE
)
IMAGENET_NOTOP_HASH = "bcbd6486424b2319ff4ef7d526e38f63"
# Bump when the preprocessing changes, so that cached features are recomputed.
_CACHE_VERSION = 1


def download_imagenet_weights():
    """The path of the ImageNet no-top weights, downloaded by Keras on first use.

    Returns:
        str, the cached file (``~/.keras/models/inception_v3_..._notop.h5``).

    Raises:
        ValueError: if the download fails (e.g. offline), saying how to pass the file instead.
    """
    try:
        return keras.utils.get_file(
            IMAGENET_NOTOP_FILE,
            IMAGENET_NOTOP_URL,
            cache_subdir="models",
            file_hash=IMAGENET_NOTOP_HASH,
        )
    except Exception as error:  # noqa: BLE001 - get_file raises a bare Exception on network errors
        # Keras says "URL fetch failure on <url>: <code> -- <reason>"; the URL follows anyway.
        reason = first_line(error).rpartition(" -- ")[2]
        raise OptionError(
            "inception_weights",
            f"cannot download the InceptionV3 ImageNet weights ({reason}); download "
            f"{IMAGENET_NOTOP_URL} on a machine with internet access and pass that file",
        ) from None


def _pool_model(include_top):
    """InceptionV3 with random weights; the 2048-d average pool as output."""
    if not include_top:
        return keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")
    full = keras.applications.InceptionV3(include_top=True, weights=None)
    return keras.Model(full.input, full.get_layer("avg_pool").output, name="inception_v3_pool")


def load_weights_file(path):
    """Builds the feature model and loads InceptionV3 weights from a local file.

    Accepts Keras' own downloads (``..._notop.h5`` or the full ``...kernels.h5``) and files written
    by ``save_weights`` of ``keras.applications.InceptionV3`` with or without its top.

    Args:
        path: str, the weights file.

    Returns:
        A ``keras.Model`` mapping ``[batch, 299, 299, 3]`` preprocessed images to ``[batch, 2048]``.

    Raises:
        ValueError: if the file is missing or holds no InceptionV3 weights.
    """
    if not io.isfile(path):
        raise OptionError("inception_weights", f"no such file: {path}")
    errors = []
    # A file with the classifier loads into the headless model in the Keras 3 format, but not in
    # the legacy .h5 format, which needs the full model.
    for include_top in (False, True):
        model = _pool_model(include_top)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with io.local_copy(path) as local:
                    model.load_weights(local)
            except (ValueError, OSError, KeyError, TypeError) as error:
                errors.append(error)
                continue
        return model
    raise OptionError(
        "inception_weights", f"{path} holds no InceptionV3 weights ({first_line(errors[0])})"
    )


def build_inception(weights=IMAGENET):
    """The feature model: InceptionV3 without its classifier, global average pooled.

    Args:
        weights: ``"imagenet"`` (downloaded by Keras on first use), a weights file path, or None
            for random weights (plumbing tests only: every build gives different features).
            Defaults to ``"imagenet"``.

    Returns:
        A ``keras.Model`` mapping ``[batch, 299, 299, 3]`` preprocessed images to ``[batch, 2048]``.

    Raises:
        ValueError: if the weights cannot be downloaded or loaded; the message says what to do.
    """
    if weights is None:
        return _pool_model(include_top=False)
    if weights == IMAGENET:
        return load_weights_file(download_imagenet_weights())
    return load_weights_file(weights)


def preprocess(image):
    """Resizes one image in [0, 255] to 299×299 RGB and scales it as InceptionV3 expects.

    A grayscale image ``[H, W, 1]`` is repeated over three channels (as the official evaluation
    of grayscale translations does); an RGBA one ``[H, W, 4]`` loses its alpha.

    Args:
        image: array or tensor ``[H, W, C]`` (C 1, 3 or 4), any numeric dtype, values in [0, 255].

    Returns:
        float32 tensor ``[299, 299, 3]`` in [-1, 1].

    Raises:
        ValueError: if the shape is not ``[H, W, 1]``, ``[H, W, 3]`` or ``[H, W, 4]``.
    """
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"expected an image of shape [H, W, 1, 3 or 4]. Received: shape={image.shape}"
        )
    image = tf.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    resized = tf.image.resize(
        tf.cast(image, tf.float32), (INCEPTION_SIZE, INCEPTION_SIZE), antialias=True
    )
    resized = tf.clip_by_value(resized, 0.0, 255.0)
    return keras.applications.inception_v3.preprocess_input(resized)


class InceptionFeatures:
    """Extracts InceptionV3 pool features from images in [0, 255], in batches.

    Args:
        weights: ``"imagenet"``, a weights file path, or None (random weights, for tests).
            Defaults to ``"imagenet"``.
        batch_size: int, images per forward pass. Defaults to 32.

    Example:
        >>> inception = InceptionFeatures("inception_v3_notop.h5")
        >>> inception(images).shape  # images: uint8 [n, H, W, 3]
        (n, 2048)
    """

    def __init__(self, weights=IMAGENET, batch_size=32):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1. Received: batch_size={batch_size}")
        self.weights = weights
        self.batch_size = batch_size
        self.model = build_inception(weights)

    @property
    def weights_id(self):
        """A string that changes when the weights do (for cache keys); None for random weights."""
        if self.weights is None:
            return None
        if self.weights == IMAGENET:
            return f"{IMAGENET}:{IMAGENET_NOTOP_HASH}"
        return ":".join(map(str, _file_identity(self.weights)))

    def __call__(self, images, count=None, progress=True):
        """Features of every image.

        Args:
            images: an iterable of ``[H, W, 3]`` images in [0, 255] (a ``uint8 [n, H, W, 3]`` array,
                a list, a generator, a ``tf.data.Dataset``); sizes may differ.
            count: int or None, the number of images for the progress bar (taken from ``len``
                when there is one).
            progress: bool, show a Keras progress bar. Defaults to True.

        Returns:
            float32 array ``[n, 2048]``.
        """
        if count is None and hasattr(images, "__len__"):
            count = len(images)
        bar = keras.utils.Progbar(count, unit_name="image") if progress else None
        features, batch = [], []
        for image in images:
            batch.append(preprocess(image))
            if len(batch) == self.batch_size:
                features.append(self._forward(batch, bar))
                batch = []
        if batch:
            features.append(self._forward(batch, bar))
        if not features:
            return np.zeros((0, FEATURE_DIM), np.float32)
        return np.concatenate(features).astype(np.float32)

    def _forward(self, batch, bar):
        outputs = np.asarray(self.model.predict_on_batch(tf.stack(batch)))
        if bar is not None:
            bar.add(len(batch))
        return outputs


def _file_identity(path):
    """``[absolute path, size, modification time]`` of a file (local, ``gs://`` or ``ram://``)."""
    import os

    location = os.path.abspath(path) if io.is_local(path) else path
    return [location, io.size(path), io.mtime_ns(path)]


def file_signature(files):
    """What identifies a list of image files for the cache: names, sizes and modification times."""
    return [_file_identity(path) for path in files]


def cached(cache_dir, label, key, compute):
    """Loads features from ``cache_dir`` if ``key`` was computed before, else computes and stores them.

    Args:
        cache_dir: str or None; None computes without caching.
        label: str, a readable prefix of the cache file name (e.g. the folder's name).
        key: JSON-serialisable, everything the features depend on (files, weights, ...). A key
            holding a None weights id (random weights) is never cached.
        compute: callable returning a float32 ``[n, d]`` array.

    Returns:
        The features, float32 ``[n, d]``.
    """
    if cache_dir is None or (isinstance(key, dict) and key.get("weights") is None):
        return compute()
    text = json.dumps({"version": _CACHE_VERSION, "key": key}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    safe_label = "".join(c if c.isalnum() or c in "-_" else "_" for c in label) or "features"
    path = io.join(cache_dir, f"{safe_label}-{digest}.npy")
    if io.isfile(path):
        logger.info("Features of %s from the cache %s", label, path)
        return np.load(bytes_io.BytesIO(io.read_bytes(path)))
    features = compute()
    buffer = bytes_io.BytesIO()
    np.save(buffer, features)
    io.write_bytes(path, buffer.getvalue())
    return features


def file_features(inception, files, cache_dir=None, label="images"):
    """Features of image files, cached under ``cache_dir`` by file list, sizes, times and weights.

    Args:
        inception: an ``InceptionFeatures``.
        files: list of str, image paths.
        cache_dir: str or None, where to keep features between runs. Defaults to None (no cache).
        label: str, a readable prefix of the cache file name. Defaults to ``"images"``.

    Returns:
        float32 array ``[len(files), 2048]``.
    """
    key = {"files": file_signature(files), "weights": inception.weights_id}
    return cached(
        cache_dir,
        label,
        key,
        lambda: inception((read_image_file(path) for path in files), count=len(files)),
    )
