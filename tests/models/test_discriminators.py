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
    with pytest.raises(ValueError, match=r"'global', 'patch', 'pixel'.*Received: kind='hinge'"):
        build_discriminator("hinge")


@pytest.mark.parametrize("antialias", [True, False])
def test_patchgan_equals_cuts_pytorch_discriminator(antialias):
    torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")
    from tests.models import torch_cut

    reference = torch_cut.Discriminator(ndf=4, n_layers=3, antialias=antialias)
    ours = patch_discriminator(ndf=4, n_layers=3, antialias=antialias)
    torch_cut.copy_discriminator(reference, ours)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 48, 3)).astype("float32")
    with torch.no_grad():
        expected = torch_cut.nhwc(reference(torch_cut.nchw(images)))
    assert expected.shape == ((2, 6, 4, 1) if antialias else (2, 6, 4, 1))
    np.testing.assert_allclose(ours(images).numpy(), expected, atol=1e-5)


def test_initialisations_have_the_reference_scale():
    """N(0, gain) for normal; gain * sqrt(2 / (fan_in + fan_out)) for xavier (CUT's)."""
    normal = patch_discriminator(ndf=64, init_type="normal", init_gain=0.02)
    xavier = patch_discriminator(ndf=64, init_type="xavier", init_gain=0.02)
    kaiming = patch_discriminator(ndf=64, init_type="kaiming")
    kernels = [w for w in xavier.weights if w.path.endswith("conv_2/kernel")]
    (kernel,) = kernels
    fan_in, fan_out = 16 * kernel.shape[2], 16 * kernel.shape[3]
    assert np.std(kernel.numpy()) == pytest.approx(0.02 * np.sqrt(2 / (fan_in + fan_out)), rel=0.03)
    (kernel,) = [w for w in normal.weights if w.path.endswith("conv_2/kernel")]
    assert np.std(kernel.numpy()) == pytest.approx(0.02, rel=0.03)
    (kernel,) = [w for w in kaiming.weights if w.path.endswith("conv_2/kernel")]
    assert np.std(kernel.numpy()) == pytest.approx(np.sqrt(2 / fan_in), rel=0.03)
    with pytest.raises(ValueError, match="init_type must be one of"):
        patch_discriminator(init_type="uniform")
    # A batch norm's scale starts at N(1, gain), as the reference's init_weights draws it.
    batch = patch_discriminator(ndf=64, norm="batch", init_gain=0.05)
    (gamma,) = [w for w in batch.weights if w.path.endswith("conv_2_norm/gamma")]
    assert np.mean(gamma.numpy()) == pytest.approx(1.0, abs=0.02)
    assert np.std(gamma.numpy()) == pytest.approx(0.05, rel=0.2)


def test_norm_options_set_the_layers_and_the_biases():
    batch = patch_discriminator(ndf=4, norm="batch")
    biased = {w.path.split("/")[0] for w in batch.weights if w.path.endswith("bias")}
    assert biased == {"conv_0", "logits"}  # the convolutions before a batch norm have none
    names = {layer.name for layer in patch_discriminator(ndf=4, norm="none").layers}
    assert not any(name.endswith("_norm") for name in names)
    pixel = build_discriminator("pixel", ndf=4, n_layers=5, antialias=True)
    assert pixel(np.zeros((2, 9, 7, 3), "float32")).shape == (2, 9, 7, 1)
    assert pixel.count_params() == 3 * 4 + 4 + 4 * 8 + 8 + 8 * 1 + 1
