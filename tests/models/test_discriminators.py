import numpy as np
import pytest

from cyclegan_tf.models import build_discriminator, patch_discriminator


def test_reference_parameter_count():
    assert patch_discriminator().count_params() == 2_764_737


def test_patchgan_gives_30x30_map_at_256():
    logits = patch_discriminator(ndf=8)(np.zeros((1, 256, 256, 3), "float32"))
    assert logits.shape == (1, 30, 30, 1)


def test_global_discriminator_gives_one_score_per_image():
    discriminator = build_discriminator("global", ndf=8)
    assert discriminator(np.zeros((3, 64, 48, 3), "float32")).shape == (3, 1)


def test_leaky_relu_slope_is_the_reference_0_2():
    discriminator = patch_discriminator(ndf=4)
    slopes = {layer.negative_slope for layer in discriminator.layers if "lrelu" in layer.name}
    assert slopes == {0.2}


def test_unknown_discriminator_lists_choices():
    with pytest.raises(ValueError, match=r"'global', 'patch'.*Received: kind='pixel'"):
        build_discriminator("pixel")
