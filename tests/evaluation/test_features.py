import json
import os

import keras
import numpy as np
import pytest

from cyclegan_tf import inference
from cyclegan_tf.evaluation import features, metrics
from cyclegan_tf.evaluation.callback import FidCallback


@pytest.fixture(scope="module")
def inception():
    """InceptionV3 features with random weights: plumbing, not meaningful numbers."""
    keras.utils.set_random_seed(0)
    return features.InceptionFeatures(weights=None, batch_size=2)


def _images(count, size=32, seed=0):
    """Smooth, distinct RGB images (gradients with random slopes)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    images = []
    for _ in range(count):
        slopes = rng.uniform(-1, 1, size=(3, 2))
        offset = rng.uniform(0.2, 0.8, size=3)
        channels = [offset[c] + 0.4 * (slopes[c, 0] * x + slopes[c, 1] * y) for c in range(3)]
        images.append(np.clip(np.stack(channels, -1) * 255, 0, 255).astype(np.uint8))
    return np.stack(images)


def test_preprocess_resizes_to_299_and_scales_to_minus_one_one():
    for value, expected in [(0, -1.0), (255, 1.0), (51, 51 / 127.5 - 1)]:
        image = np.full((40, 70, 3), value, np.uint8)
        output = features.preprocess(image).numpy()
        assert output.shape == (299, 299, 3)
        np.testing.assert_allclose(output, expected, atol=1e-5)


def test_preprocess_rejects_non_rgb_shapes():
    with pytest.raises(ValueError, match=r"Received: shape=\(8, 8\)"):
        features.preprocess(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"Received: shape=\(8, 8, 2\)"):
        features.preprocess(np.zeros((8, 8, 2), np.uint8))


def test_grayscale_is_repeated_over_three_channels_and_alpha_dropped():
    """FID of grayscale translations as the official evaluation does: gray replicated to RGB."""
    gray = np.random.default_rng(0).integers(0, 256, (30, 40, 1), dtype=np.uint8)
    rgb = np.repeat(gray, 3, axis=-1)
    np.testing.assert_array_equal(features.preprocess(gray), features.preprocess(rgb))
    rgba = np.concatenate([rgb, np.zeros_like(gray)], axis=-1)
    np.testing.assert_array_equal(features.preprocess(rgba), features.preprocess(rgb))


def test_features_do_not_depend_on_batching_or_input_container(inception):
    images = list(_images(5))
    images[2] = np.repeat(np.repeat(images[2], 2, axis=0), 3, axis=1)  # another size
    batched = inception(images, progress=False)
    assert batched.shape == (5, features.FEATURE_DIM)
    assert batched.dtype == np.float32
    # One image per pass, fed from a generator: the same features.
    one_by_one = np.concatenate(
        [inception.model.predict_on_batch(features.preprocess(image)[None]) for image in images]
    )
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-5)
    from_generator = inception((image for image in images), count=5, progress=False)
    np.testing.assert_allclose(batched, from_generator, rtol=1e-4, atol=1e-5)


def test_weights_file_loads_into_the_feature_model(tmp_path):
    keras.utils.set_random_seed(1)
    source = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg")
    path = str(tmp_path / "inception.weights.h5")
    source.save_weights(path)
    loaded = features.InceptionFeatures(weights=path)
    batch = np.stack([features.preprocess(image) for image in _images(2)])
    np.testing.assert_allclose(
        loaded.model.predict_on_batch(batch), source.predict_on_batch(batch), rtol=1e-5, atol=1e-6
    )
    assert loaded.weights_id.startswith(os.path.abspath(path))


def test_missing_or_wrong_weights_file_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no such file: .*absent.h5"):
        features.build_inception(str(tmp_path / "absent.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not weights")
    with pytest.raises(ValueError, match="junk.h5 holds no InceptionV3 weights"):
        features.build_inception(str(junk))


def test_offline_download_says_how_to_pass_the_weights(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception(  # what keras.utils.get_file raises without a network
            "URL fetch failure on https://storage.googleapis.com/...: None -- "
            "[Errno -3] Temporary failure in name resolution"
        )

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ValueError) as error:
        features.build_inception("imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert "Temporary failure in name resolution" in message
    assert features.IMAGENET_NOTOP_URL in message
    assert message.startswith("inception_weights: cannot download")
    assert error.value.option == "inception_weights"


class _CountingExtractor:
    """Stands in for InceptionFeatures: one feature per image (its mean), counts images seen."""

    def __init__(self, weights_id="weights-v1"):
        self.weights_id = weights_id
        self.seen = 0

    def __call__(self, images, count=None, progress=True):
        rows = [[float(np.mean(image))] for image in images]
        self.seen += len(rows)
        return np.asarray(rows, np.float32)


def _write_pngs(folder, images):
    from PIL import Image

    folder.mkdir(exist_ok=True)
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{index:02d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def test_file_features_are_cached_by_files_and_weights(tmp_path):
    files = _write_pngs(tmp_path / "testB", _images(3))
    cache = str(tmp_path / "cache")
    extractor = _CountingExtractor()
    first = features.file_features(extractor, files, cache, label="testB")
    np.testing.assert_allclose(first[:, 0], [np.mean(image) for image in _images(3)], rtol=1e-6)
    again = features.file_features(extractor, files, cache, label="testB")
    assert extractor.seen == 3  # read from the cache
    np.testing.assert_array_equal(first, again)

    os.utime(files[0], ns=(1, 1))  # a changed file
    features.file_features(extractor, files, cache, label="testB")
    assert extractor.seen == 6
    features.file_features(_CountingExtractor("weights-v2"), files, cache, label="testB")
    assert len(os.listdir(cache)) == 3

    unseeded = _CountingExtractor(weights_id=None)  # random weights: never cached
    features.file_features(unseeded, files, cache, label="testB")
    features.file_features(unseeded, files, cache, label="testB")
    assert unseeded.seen == 6


class Holder(keras.Model):
    """A trainable model with a ``generator_ab`` (a 1x1 convolution) for the callback to score."""

    def __init__(self):
        super().__init__()
        self.generator_ab = keras.Sequential(
            [keras.Input((None, None, 3)), keras.layers.Conv2D(3, 1)]
        )
        self.generator_ab.trainable = False  # set by _SetGenerator, not by the optimizer
        self.head = keras.layers.Dense(1)

    def call(self, inputs):
        return self.head(inputs)


class _SetGenerator(keras.callbacks.Callback):
    """Sets the generator to ``scale * identity`` at each epoch start, as training would change it."""

    def __init__(self, scales):
        super().__init__()
        self.scales = scales

    def on_epoch_begin(self, epoch, logs=None):
        kernel = np.eye(3, dtype=np.float32)[None, None] * self.scales[epoch]
        self.model.generator_ab.set_weights([kernel, np.zeros(3, np.float32)])


def test_fid_callback_logs_scores_and_keeps_the_best_generator(inception, tmp_path):
    source = _images(4, seed=1)
    target = _images(4, seed=1)  # the identity generator is the perfect translator here
    scales = [0.3, 1.0, 0.6, 0.8]  # epoch 2 is the identity
    best_path = str(tmp_path / "models" / "best_netG_A2B.keras")
    csv_path = str(tmp_path / "training.csv")
    fid_callback = FidCallback(
        source, target, inception, every=2, keep_best_path=best_path, kid_subsets=2
    )
    model = Holder()
    model.compile(optimizer="sgd", loss="mse")
    model.fit(
        np.zeros((4, 2), np.float32),
        np.zeros((4, 1), np.float32),
        epochs=4,
        verbose=0,
        callbacks=[_SetGenerator(scales), fid_callback, keras.callbacks.CSVLogger(csv_path)],
    )

    import csv

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    # Scored: the first epoch, every 2nd and the last; epoch 3 is NA in the CSV.
    assert rows[2]["fid"] == rows[2]["kid"] == "NA"
    fids = {int(row["epoch"]) + 1: float(row["fid"]) for row in rows if row["fid"] != "NA"}
    assert sorted(fids) == [1, 2, 4]
    assert fids[2] == pytest.approx(0.0, abs=1e-9)
    assert min(fids[1], fids[4]) > 1e3 * max(fids[2], 1e-15)

    # The last epoch's value, recomputed independently from the final generator.
    translated = inference.translate_pixels(model.generator_ab, source)
    expected = metrics.fid(inception(translated, progress=False), inception(target, progress=False))
    assert fids[4] == pytest.approx(expected, rel=1e-3, abs=1e-9)

    with open(best_path.replace(".keras", ".json")) as f:
        best = json.load(f)
    assert best["epoch"] == 2
    assert best["fid"] == pytest.approx(fids[2])
    saved = keras.models.load_model(best_path)
    np.testing.assert_allclose(saved.get_weights()[0][0, 0], np.eye(3), rtol=1e-6)
