import numpy as np
import pytest

from cyclegan_tf.models import build_discriminator, patch_discriminator, resnet_generator


def test_reference_parameter_counts():
    assert resnet_generator().count_params() == 11_378_179
    assert patch_discriminator().count_params() == 2_764_737


def test_patchgan_gives_30x30_map_at_256():
    logits = patch_discriminator(ndf=8)(np.zeros((1, 256, 256, 3), "float32"))
    assert logits.shape == (1, 30, 30, 1)


@pytest.mark.parametrize("height,width", [(32, 32), (36, 44), (64, 20), (8, 12)])
def test_generator_output_size_equals_input_size(height, width):
    generator = resnet_generator(ngf=8, n_res_blocks=1)
    outputs = generator(np.random.uniform(-1, 1, (2, height, width, 3)).astype("float32"))
    assert outputs.shape == (2, height, width, 3)
    assert np.all(np.abs(outputs) <= 1.0)


def test_global_discriminator_gives_one_score_per_image():
    discriminator = build_discriminator("global", ndf=8)
    assert discriminator(np.zeros((3, 64, 48, 3), "float32")).shape == (3, 1)


def test_leaky_relu_slope_is_the_reference_0_2():
    discriminator = patch_discriminator(ndf=4)
    slopes = {layer.negative_slope for layer in discriminator.layers if "lrelu" in layer.name}
    assert slopes == {0.2}


def test_instance_norm_is_per_image():
    generator = resnet_generator(ngf=8, n_res_blocks=1)
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    other = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32") * 5
    alone = generator(image).numpy()
    in_batch = generator(np.concatenate([image, other])).numpy()[:1]
    np.testing.assert_allclose(alone, in_batch, atol=1e-5)


def test_unknown_discriminator_lists_choices():
    with pytest.raises(ValueError, match=r"'global', 'patch'.*Received: kind='pixel'"):
        build_discriminator("pixel")


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="ngf"):
        resnet_generator(ngf=0)
    with pytest.raises(ValueError, match="n_res_blocks"):
        resnet_generator(n_res_blocks=-1)
