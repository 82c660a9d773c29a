"""A Keras callback that scores a generator with FID/KID during training and keeps the best one."""

import json
import logging
import math
import time

import keras
import numpy as np

from cyclegan_tf import io, model_store
from cyclegan_tf.evaluation import metrics
from cyclegan_tf.inference import CompiledGenerator

logger = logging.getLogger(__name__)


class FidCallback(keras.callbacks.Callback):
    """FID and KID of a generator's translations of fixed source images against the target domain.

    At the end of the first epoch of ``fit``, every ``every`` epochs and the last epoch, it
    translates ``source_images`` with the model's A→B generator (``translation_generators()``, or
    ``getattr(model, generator_attribute)``), extracts their
    InceptionV3 features and adds ``fid`` and ``kid`` to the epoch's ``logs``. Callbacks share one
    ``logs`` dict in list order, so put this callback **before** ``CSVLogger`` and ``TensorBoard``.
    ``CSVLogger`` fixes its columns at the first epoch, which is why that epoch is always scored;
    epochs without a score show ``NA`` there.

    With ``keep_best_path`` the generator with the lowest FID so far is saved there (atomically),
    with ``{"epoch", "fid", "kid"}`` in a ``.json`` file next to it; a resumed run reads that file
    and only replaces a better model.

    Args:
        source_images: ``uint8 [n, H, W, 3]`` array or list of ``[H, W, 3]`` arrays in [0, 255],
            the fixed subset to translate (``n >= 2``; a few hundred give stable numbers).
        target: float ``[m, 2048]`` features of the target domain, or its images like
            ``source_images`` (their features are computed once, at the start of training).
        inception: an ``InceptionFeatures``.
        every: int, score every N epochs. Defaults to 1.
        keep_best_path: str or None, a ``.keras`` path for the best generator. Defaults to None.
        generator_attribute: str or None, the model attribute to evaluate. Defaults to None: the
            objective's A→B generator.
        kid_subsets: int, KID subsets. Defaults to 100.
        kid_subset_size: int, images per KID subset. Defaults to 1000.
        batch_size: int, source images translated together when they share a size. Defaults to 8.
        epochs: int or None, the epochs of the whole training, for a training of several ``fit``
            calls whose CSV keeps its columns (the trainer's): its first and last epochs and every
            ``every``-th are scored, whichever ``fit`` trains them, so a resumed run scores the
            epochs an uninterrupted one does. None: the first and last epoch of each ``fit``.

    Example:
        ```python
        inception = InceptionFeatures("inception_v3_notop.h5")
        source = list(domain_a.images.take(200).as_numpy_iterator())
        target = list(domain_b.images.take(200).as_numpy_iterator())
        fid_callback = FidCallback(source, target, inception, every=5,
                                   keep_best_path="runs/x/models/best_netG_A2B.keras")
        model.fit(..., callbacks=[fid_callback, keras.callbacks.CSVLogger("training.csv")])
        ```
    """

    def __init__(
        self,
        source_images,
        target,
        inception,
        every=1,
        keep_best_path=None,
        generator_attribute=None,
        kid_subsets=100,
        kid_subset_size=1000,
        batch_size=8,
        epochs=None,
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be at least 1. Received: every={every}")
        if keep_best_path is not None and not keep_best_path.endswith(".keras"):
            raise ValueError(
                f"keep_best_path must end in .keras. Received: keep_best_path={keep_best_path!r}"
            )
        self.source_images = [np.asarray(image) for image in source_images]
        if len(self.source_images) < 2:
            raise ValueError(
                f"source_images needs at least 2 images. Received: {len(self.source_images)}"
            )
        self.target = target
        self.inception = inception
        self.every = every
        self.keep_best_path = keep_best_path
        self.generator_attribute = generator_attribute
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.batch_size = batch_size
        self.epochs = epochs
        self.best_fid = math.inf
        self._target_features = None
        self._first_epoch = None
        self._compiled = None

    @property
    def best_info_path(self):
        """The ``.json`` file next to ``keep_best_path``; None without it."""
        if self.keep_best_path is None:
            return None
        return self.keep_best_path[: -len(".keras")] + ".json"

    def on_train_begin(self, logs=None):
        self._first_epoch = None
        if self._target_features is None:
            self._target_features = self._features_of_target()
        path = self.best_info_path
        if path is not None and io.isfile(path) and io.isfile(self.keep_best_path):
            self.best_fid = float(json.loads(io.read_text(path))["fid"])

    def _features_of_target(self):
        if isinstance(self.target, np.ndarray) and self.target.ndim == 2:
            return self.target.astype(np.float32)
        return self.inception(self.target, progress=False)

    def _due(self, epoch):
        if self.epochs is not None:
            return epoch == 0 or (epoch + 1) % self.every == 0 or epoch + 1 == self.epochs
        if self._first_epoch is None:
            self._first_epoch = epoch
            return True
        last = self.params.get("epochs") if self.params else None
        return (epoch + 1) % self.every == 0 or epoch + 1 == last

    def _generator(self):
        if self.generator_attribute is not None:
            return getattr(self.model, self.generator_attribute)
        if hasattr(self.model, "translation_generators"):
            return self.model.translation_generators()["A2B"]
        return self.model.generator_ab  # a model of the user's that names it as CycleGAN does

    def translations(self):
        """The generator's translations of ``source_images``, float32 ``[H, W, 3]`` in [0, 255]."""
        generator = self._generator()
        if self._compiled is None or self._compiled.generator is not generator:
            self._compiled = CompiledGenerator(generator)
        same_size = len({image.shape for image in self.source_images}) == 1
        step = self.batch_size if same_size else 1
        for start in range(0, len(self.source_images), step):
            batch = np.stack(self.source_images[start : start + step])
            yield from np.asarray(self._compiled.translate_pixels(batch))

    def score(self):
        """FID and KID of the current generator now, as ``metrics.Scores``."""
        if self._target_features is None:
            self._target_features = self._features_of_target()
        features = self.inception(
            self.translations(), count=len(self.source_images), progress=False
        )
        return metrics.scores(
            features, self._target_features, self.kid_subsets, self.kid_subset_size
        )

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch):
            return
        start = time.perf_counter()
        result = self.score()
        if logs is not None:
            logs["fid"] = result.fid
            logs["kid"] = result.kid
        logger.info(
            "Epoch %d: FID %.2f, KID %.4f ± %.4f on %d images (%.1f s)",
            epoch + 1,
            result.fid,
            result.kid,
            result.kid_std,
            len(self.source_images),
            time.perf_counter() - start,
        )
        if self.keep_best_path is not None and result.fid < self.best_fid:
            self.best_fid = result.fid
            self._save_best(epoch, result)

    def _save_best(self, epoch, result):
        model_store.save_model(self._generator(), self.keep_best_path)
        info = {"epoch": epoch + 1, "fid": result.fid, "kid": result.kid}
        io.write_text(self.best_info_path, json.dumps(info), durable=True)
        logger.info("Epoch %d: best FID so far, saved %s", epoch + 1, self.keep_best_path)
