import os

import keras
import numpy as np
import pytest

from cyclegan_tf import inference
from cyclegan_tf.errors import OptionError
from cyclegan_tf.inference import KerasTranslator, TiledGenerator, estimate_whole_image_bytes
from cyclegan_tf.inference.band_store import BandStore
from cyclegan_tf.inference.file_translation import translate_array
from cyclegan_tf.inference.tiled import estimate_whole_image_resident_bytes
from cyclegan_tf.models import resnet_generator

# The contract: 1/255 of the pixel range, i.e. 2/255 in [-1, 1] units. Measured: about 1e-4 (the
# whole-image model's own float32 statistics; against a float64 model the tiled result is within 1e-6).
PIXEL_TOLERANCE = 2 / 255


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(0)
    model = resnet_generator(ngf=4, n_res_blocks=2)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-zero biases, so that a bias a band function dropped would show
        for block in [layer, *getattr(layer, "_layers", [])]:
            if getattr(block, "bias", None) is not None:
                block.bias.assign(rng.normal(0, 0.1, block.bias.shape))
    return model


@pytest.fixture(scope="module", params=["antialias", "antialias-down", "antialias-up"])
def anti_aliased(request):
    """CUT's generators: blurred downsampling and upsampling, or one of the two."""
    from cyclegan_tf.models import ResnetGenerator

    keras.utils.set_random_seed(1)
    down, up = {"antialias": (True, True), "antialias-down": (True, False)}.get(
        request.param, (False, True)
    )
    model = ResnetGenerator(ngf=4, n_res_blocks=2, antialias=down, antialias_up=up)
    rng = np.random.default_rng(1)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.1, weight.shape))
    return model


def _image(height, width, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (height, width, 3)).astype(np.float32)


def _whole(generator, image):
    return inference.translate(generator, image[None])[0].numpy()


def _max_error(a, b):
    return float(np.abs(a - b).max())


def test_odd_size_in_many_bands_matches_whole_image(generator):
    image = _image(1001, 757)
    tiled = TiledGenerator(generator, max_memory_bytes=2**24)
    outputs = tiled.translate(image)
    reference = _whole(generator, image)
    assert outputs.shape == image.shape
    assert max(tiled.last_run.band_rows) < 1004  # bands, not one band
    assert reference.std() > 0.1  # a result that could differ
    assert _max_error(outputs, reference) <= PIXEL_TOLERANCE


@pytest.mark.parametrize("band_rows", [1, 5, 11, 23, 47])
def test_awkward_band_heights_match_whole_image(generator, band_rows):
    # 45x37 pads to 48x40: maps of 48, 24 and 12 rows. 5 divides none of them; 11, 23 and 47 leave a
    # last band of one row at the bottleneck, at half and at full resolution.
    image = _image(45, 37, seed=band_rows)
    outputs = TiledGenerator(generator, band_rows=band_rows).translate(image)
    assert _max_error(outputs, _whole(generator, image)) <= PIXEL_TOLERANCE


def test_anti_aliased_generators_match_whole_image(anti_aliased):
    """The blurs widen every halo; each band still sees exactly the rows the whole image gives it."""
    image = _image(45, 37, seed=3)
    tiled = TiledGenerator(anti_aliased, max_memory_bytes=16_000)
    outputs = tiled.translate(image)
    reference = _whole(anti_aliased, image)
    assert reference.std() > 0.1
    assert _max_error(outputs, reference) <= 1e-4
    assert tiled.last_run.spilled_bytes > 0  # a budget too small for the maps: they went to disk
    assert min(tiled.last_run.band_rows) < 12  # and for whole maps: bands
    tiny = image[:2, :3]
    outputs = TiledGenerator(anti_aliased, band_rows=1).translate(tiny)
    assert _max_error(outputs, _whole(anti_aliased, tiny)) <= 1e-4


@pytest.mark.parametrize("shape", [(8, 8), (2, 3)])
def test_tiny_images_match_whole_image(generator, shape):
    image = _image(*shape)
    outputs = TiledGenerator(generator, band_rows=1).translate(image)
    assert outputs.shape == shape + (3,)
    assert _max_error(outputs, _whole(generator, image)) <= PIXEL_TOLERANCE


def test_one_pixel_image_gives_the_exact_constant(generator):
    # One pixel pads to a constant 8x8 image: every map is constant, every instance norm gives exactly
    # 0 and the output is tanh(head bias). The whole-image model divides its float32 rounding noise by
    # sqrt(1e-5) instead and is off by about 0.09 (1e-4 in float64); the tiled statistics are exact.
    outputs = TiledGenerator(generator, band_rows=1).translate(_image(1, 1))
    expected = np.tanh(generator.get_layer("head_conv").bias.numpy())
    np.testing.assert_allclose(outputs[0, 0], expected, atol=1e-6)


def test_budget_below_whole_image_spills_and_still_matches(generator, tmp_path):
    image = _image(203, 157)
    budget = 2**16  # the two bottleneck maps take 2 x 130 KB
    assert estimate_whole_image_bytes(4, 2, 203, 157) > budget
    tiled = TiledGenerator(
        generator, max_memory_bytes=budget, spill_dir=str(tmp_path), band_rows=13
    )
    outputs = tiled.translate(image)
    assert tiled.last_run.spilled_bytes > 0
    assert _max_error(outputs, _whole(generator, image)) <= PIXEL_TOLERANCE
    assert os.listdir(tmp_path) == []  # the temporary files are gone


def test_bf16_error_is_that_of_keras_mixed_bfloat16(generator):
    image = _image(203, 157)
    reference = _whole(generator, image)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = resnet_generator(ngf=4, n_res_blocks=2)
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(generator.get_weights())
    keras_error = np.abs(_whole(mixed, image) - reference)
    tiled_error = np.abs(TiledGenerator(generator, precision="bf16").translate(image) - reference)
    # Measured: max 0.018 and mean 0.0027 in [-1, 1] units for both.
    assert tiled_error.max() <= 0.05
    assert tiled_error.mean() <= 1.25 * keras_error.mean()


def test_generator_under_mixed_policy_uses_its_float32_weights(generator):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = resnet_generator(ngf=4, n_res_blocks=2)
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.set_weights(generator.get_weights())
    image = _image(37, 53)
    outputs = TiledGenerator(mixed).translate(image)
    assert _max_error(outputs, _whole(generator, image)) <= 1e-4


def test_pixels_in_and_out_match_the_whole_image_translator(generator):
    pixels = np.random.default_rng(3).integers(0, 256, (61, 43, 3)).astype(np.uint8)
    outputs = TiledGenerator(generator, band_rows=7).translate_pixels(pixels)
    whole = inference.translate_pixels(generator, pixels[None])[0].numpy()
    assert outputs.dtype == np.float32
    assert 0 <= outputs.min() and outputs.max() <= 255
    assert _max_error(outputs, whole) <= 1.0  # 1/255 of the pixel range


def test_translator_tiles_an_image_over_its_budget_with_the_whole_image_result(generator):
    pixels = np.random.default_rng(4).integers(0, 256, (1, 203, 157, 3)).astype(np.uint8)
    whole = KerasTranslator(generator)  # 4 GiB: a 203x157 image runs whole
    small = KerasTranslator(generator, max_memory_gb=0.5)  # below even the runtime's share
    assert not whole.tiles(203, 157)
    assert small.tiles(203, 157)
    fractions = []
    outputs = small.translate_pixels(pixels, progress=fractions.append)
    assert fractions[-1] == 1.0  # the tiled path ran
    reference = whole.translate_pixels(pixels)
    assert outputs.shape == reference.shape == pixels.shape
    assert reference.std() > 10  # a result that could differ
    assert _max_error(outputs, reference) <= 1.0
    rounded = translate_array(small, pixels[0])
    assert rounded.dtype == np.uint8
    assert np.abs(rounded.astype(int) - translate_array(whole, pixels[0])).max() <= 1


def test_translator_rejects_bad_budget_and_precision(generator):
    for budget in (0, -1, "lots"):
        with pytest.raises(OptionError, match="max_memory_gb"):
            KerasTranslator(generator, max_memory_gb=budget)
    with pytest.raises(OptionError, match="precision"):
        KerasTranslator(generator, precision="fp8")
    other = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 1)])
    assert not KerasTranslator(other, max_memory_gb=0.1).tiles(4000, 3000)  # runs whole
    with pytest.raises(OptionError, match="bf16 needs a resnet_generator"):
        KerasTranslator(other, precision="bf16")


def test_progress_rises_to_one(generator):
    fractions = []
    TiledGenerator(generator, band_rows=4).translate(_image(40, 30), progress=fractions.append)
    assert len(fractions) > 20
    assert np.all(np.diff(fractions) >= 0)
    assert fractions[-1] == 1.0


def test_compiled_functions_do_not_retrace_per_band_or_size(generator):
    tiled = TiledGenerator(generator, band_rows=3)
    for shape in [(20, 28), (45, 37), (9, 70)]:
        tiled.translate(_image(*shape))
    assert all(f.experimental_get_tracing_count() == 1 for f in tiled._functions.values())


def test_store_serves_old_rows_after_in_place_writes(tmp_path):
    for spill_dir in (None, str(tmp_path)):
        store = BandStore((6, 2, 1), np.float32, spill_dir)
        store.write(0, np.arange(12, dtype=np.float32).reshape(6, 2, 1))
        store.begin_pass(halo=1)
        band = store.rows(0, 3).copy()
        store.write(0, -band[:2])  # overwrite rows 0 and 1
        np.testing.assert_array_equal(store.rows(1, 4)[:, 0, 0], [2, 4, 6])  # row 1 as it was
        with pytest.raises(RuntimeError, match="overwritten"):
            store.rows(0, 2)
        store.close()


def test_resident_estimate_is_just_above_the_measured_whole_image_peaks():
    # Peak RSS (GiB) measured with scripts/measure_tiled.py, ngf 64, 9 blocks.
    for (height, width, precision), measured in {
        (866, 1155, "float32"): 1.53,
        (1732, 2309, "float32"): 3.61,
        (1732, 2309, "bf16"): 3.93,
        (3000, 4000, "float32"): 9.86,
        (3000, 4000, "bf16"): 11.05,
    }.items():
        estimate = estimate_whole_image_resident_bytes(64, 9, height, width, precision) / 2**30
        assert measured <= estimate <= 1.15 * measured


def test_rejects_bad_arguments(generator):
    with pytest.raises(ValueError, match="precision"):
        TiledGenerator(generator, precision="fp8")
    with pytest.raises(ValueError, match="max_memory_bytes"):
        TiledGenerator(generator, max_memory_bytes=0)
    with pytest.raises(ValueError, match="Received: shape=\\(5, 5\\)"):
        TiledGenerator(generator).translate(np.zeros((5, 5)))
    other = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 1)])
    with pytest.raises(ValueError, match="is not a ResNet generator"):
        TiledGenerator(other)


def test_only_our_resnet_exports_are_rebuilt_as_generators(generator, tmp_path):
    import tensorflow as tf

    from cyclegan_tf.inference.saved_model_generator import generator_from_saved_model

    module = tf.Module()
    module.kernel = tf.Variable(tf.zeros([7, 7, 3, 4]), name="stem_conv/kernel")
    tf.saved_model.save(module, str(tmp_path / "other"))
    assert generator_from_saved_model(tf.saved_model.load(str(tmp_path / "other"))) is None

    from cyclegan_tf.export import saved_model

    path = saved_model.export(generator, str(tmp_path), "ours")
    rebuilt = generator_from_saved_model(tf.saved_model.load(path))
    assert rebuilt is not None and len(rebuilt.weights) == len(generator.weights)
    for mine, theirs in zip(rebuilt.weights, generator.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_whole_image_estimate_covers_the_convolution_buffer():
    # TensorFlow's own CPU convolution asked for 26,843,602,944 bytes for the head of an ngf-8
    # generator on a 4096x4096 image (the im2col of its input), which the system refused: the process
    # aborted, while the resident estimate said 2.6 GB.
    assert estimate_whole_image_bytes(8, 2, 4096, 4096) > 26_843_602_944
    translator = KerasTranslator(resnet_generator(ngf=8, n_res_blocks=2))  # the default 4 GiB
    assert translator.tiles(4096, 4096)
    assert not translator.tiles(512, 512)


def test_bands_bound_the_convolution_buffer_too(generator):
    budget = 2**26
    tiled = TiledGenerator(generator, max_memory_bytes=budget)
    width = 2000
    tiled.translate(_image(120, width))
    head_rows = tiled.last_run.band_rows[-1]
    # The head's im2col: 7 x 7 x ngf values (padded to 16) per output pixel, within the bands' quarter.
    head_buffer = head_rows * width * 4 * 208
    assert 1 < head_rows and head_buffer <= budget // 4


def test_threads_sharing_a_translator_get_the_results_they_get_alone(generator):
    import threading

    # 1 GiB: what the tiled maps get depends on each image's size (the budget less its arrays).
    translator = KerasTranslator(generator, max_memory_gb=1.0)
    rng = np.random.default_rng(5)
    images = [
        rng.integers(0, 256, shape + (3,)).astype(np.uint8)
        for shape in [(600, 1100), (40, 1100), (301, 1003)]
    ]
    alone = []
    for image in images:
        alone.append((translator.translate_tiled(image), translator.last_tiled_run))
    assert len({str(run.band_rows) for _, run in alone}) == 3
    results = {}

    def work(index, rounds=2):
        for round_ in range(rounds):
            image_index = (index + round_) % len(images)
            output = translator.translate_tiled(images[image_index])
            results[index, round_] = (image_index, output, translator.last_tiled_run)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    for image_index, output, run in results.values():
        expected_output, expected_run = alone[image_index]
        assert run == expected_run
        np.testing.assert_array_equal(output, expected_output)
