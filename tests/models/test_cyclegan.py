import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_tf import CycleGAN

SIZE = 32


def _tiny(**overrides):
    options = dict(ngf=4, ndf=4, n_res_blocks=1, image_size=SIZE, pool_size=0, seed=0)
    options.update(overrides)
    return CycleGAN(**options)


def _pairs(n=4, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")
    b = rng.uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32")
    return a, b


# The reference's defaults, written out here rather than read from the model under test.
LAMBDA_CYCLE = 10.0
LAMBDA_IDENTITY = 0.5


def _reference_gan_loss(gan_mode):
    """``GANLoss`` of the reference: MSE to 1/0 (lsgan) or BCE with logits (vanilla)."""
    if gan_mode == "lsgan":
        return lambda logits, real: tf.reduce_mean(tf.square(logits - (1.0 if real else 0.0)))
    # BCE with logits: -log(sigmoid(x)) = softplus(-x) for "real", -log(1 - sigmoid(x)) = softplus(x).
    return lambda logits, real: tf.reduce_mean(tf.nn.softplus(-logits if real else logits))


def _reference_gradients(model, real_a, real_b, gan_mode):
    """The reference objective, written out independently of CycleGAN.train_step (no pool)."""
    g_ab, g_ba = model.generator_ab, model.generator_ba
    d_a, d_b = model.discriminator_a, model.discriminator_b
    lam, lam_id = LAMBDA_CYCLE, LAMBDA_IDENTITY
    gan = _reference_gan_loss(gan_mode)

    def l1(x, y):
        return tf.reduce_mean(tf.abs(x - y))

    g_vars = g_ab.trainable_variables + g_ba.trainable_variables
    with tf.GradientTape() as tape:
        fake_b, fake_a = g_ab(real_a), g_ba(real_b)
        loss = gan(d_b(fake_b), True) + gan(d_a(fake_a), True)
        loss += lam * l1(g_ba(fake_b), real_a) + lam * l1(g_ab(fake_a), real_b)
        loss += lam * lam_id * (l1(g_ba(real_a), real_a) + l1(g_ab(real_b), real_b))
    g_grads = tape.gradient(loss, g_vars)
    d_vars = d_a.trainable_variables + d_b.trainable_variables
    with tf.GradientTape() as tape:
        loss_a = 0.5 * (gan(d_a(real_a), True) + gan(d_a(fake_a), False))
        loss_b = 0.5 * (gan(d_b(real_b), True) + gan(d_b(fake_b), False))
        loss = loss_a + loss_b
    d_grads = tape.gradient(loss, d_vars)
    return g_vars, g_grads, d_vars, d_grads


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_train_step_is_the_reference_update(gan_mode):
    model = _tiny(gan_mode=gan_mode)  # lambda_cycle and lambda_identity at their defaults
    model.compile(
        generator_optimizer=keras.optimizers.SGD(0.1),
        discriminator_optimizer=keras.optimizers.SGD(0.1),
    )
    real_a, real_b = _pairs(2)
    g_vars, g_grads, d_vars, d_grads = _reference_gradients(model, real_a, real_b, gan_mode)
    expected = [v.numpy() - 0.1 * g.numpy() for v, g in zip(g_vars, g_grads)]
    expected += [v.numpy() - 0.1 * g.numpy() for v, g in zip(d_vars, d_grads)]
    model.train_on_batch(real_a, real_b)
    for variable, value in zip(g_vars + d_vars, expected):
        np.testing.assert_allclose(variable.numpy(), value, atol=2e-5, err_msg=variable.path)


def test_fit_reports_the_seed_metrics_and_changes_weights():
    model = _tiny(pool_size=4)
    model.compile()
    a, b = _pairs(8)
    dataset = tf.data.Dataset.from_tensor_slices((a, b)).batch(2).repeat()
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(dataset, epochs=2, steps_per_epoch=3, verbose=0)
    for name in ("d_loss", "g_loss", "adv", "cycle", "identity", "d_a", "adv_ab", "cycle_bab"):
        assert np.all(np.isfinite(history.history[name])), name
    logs = {k: v[-1] for k, v in history.history.items()}
    assert logs["adv"] == pytest.approx((logs["adv_ab"] + logs["adv_ba"]) / 2, rel=1e-5)
    assert logs["d_loss"] == pytest.approx((logs["d_a"] + logs["d_b"]) / 2, rel=1e-5)
    assert logs["g_loss"] == pytest.approx(
        2 * (logs["adv"] + logs["cycle"] + logs["identity"]), rel=1e-4
    )
    changed = [not np.array_equal(x, y) for x, y in zip(before, model.get_weights())]
    assert sum(changed) > len(changed) // 2
    assert int(model.generator_optimizer.iterations.numpy()) == 6
    assert int(model.discriminator_optimizer.iterations.numpy()) == 6


def test_zero_identity_weight_reports_no_identity():
    model = _tiny(lambda_identity=0.0)
    model.compile()
    logs = model.train_on_batch(*_pairs(2), return_dict=True)
    assert logs["identity"] == 0.0 and logs["cycle"] > 0


def test_evaluate_reports_cycle_and_identity_only():
    model = _tiny()
    model.compile()
    results = model.evaluate(*_pairs(4), batch_size=2, return_dict=True, verbose=0)
    assert set(results) >= {"cycle", "identity", "cycle_aba", "identity_b"}
    assert "d_loss" not in results and results["cycle"] > 0


def test_keras_round_trip_gives_identical_outputs(tmp_path):
    model = _tiny(discriminator_kind="global", gan_mode="vanilla", pool_size=3)
    model.compile()
    a, b = _pairs(2)
    model.train_on_batch(a, b)
    path = str(tmp_path / "cyclegan.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded(a), model(a))
    np.testing.assert_array_equal(loaded.discriminator_b(b), model.discriminator_b(b))
    assert int(loaded.pool_a.count.numpy()) == 2
    assert int(loaded.generator_optimizer.iterations.numpy()) == 1
    loaded.train_on_batch(a, b)  # the restored optimizers keep training


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="image_size"):
        _tiny(image_size=30)
    with pytest.raises(ValueError, match="lambda_cycle=-1"):
        _tiny(lambda_cycle=-1)
    with pytest.raises(ValueError, match="gan_mode"):
        _tiny(gan_mode="hinge")


# The official architecture options, one step against tests/models/torch_cyclegan.py: the options
# of both generators and discriminators, the adversarial loss, and the images' channels.
OPTION_CASES = {
    "batch-norm-pixel-wgangp": dict(norm="batch", discriminator_kind="pixel", gan_mode="wgangp"),
    "gray-no-norm-vanilla": dict(
        norm="none", n_disc_layers=2, gan_mode="vanilla", input_nc=1, output_nc=1
    ),
    "gray-to-rgb-affine-wgangp": dict(
        affine_norm=True, gan_mode="wgangp", input_nc=1, output_nc=3, lambda_identity=0.0
    ),
    "unet-128-batch-norm": dict(
        generator_kind="unet_128", norm="batch", image_size=128, discriminator_kind="pixel"
    ),
}


def _torch_networks(options, seed):
    """The PyTorch generators and discriminators of ``options``, randomised."""
    from tests.models import torch_cyclegan
    from tests.tools.torch_reference import ResnetGenerator, UnetGenerator, randomize

    norm = options.get("norm", "instance")
    affine = options.get("affine_norm", False)
    channels = {"a": options.get("input_nc", 3), "b": options.get("output_nc", 3)}

    def generator(source, target, offset):
        if options.get("generator_kind") == "unet_128":
            module = UnetGenerator(4, 7, channels[source], channels[target], norm, affine)
        else:
            module = ResnetGenerator(4, 1, channels[source], norm, affine, False, channels[target])
        return randomize(module, seed + offset, scale=0.1).train()

    def discriminator(domain, offset):
        if options.get("discriminator_kind") == "pixel":
            module = torch_cyclegan.PixelDiscriminator(4, channels[domain], norm, affine)
        else:
            layers = options.get("n_disc_layers", 3)
            module = torch_cyclegan.NLayerDiscriminator(4, layers, channels[domain], norm, affine)
        # The reference's initial scale: a gradient penalty stays near 10, within float32's reach.
        return randomize(module, seed + offset, scale=0.02).train()

    return (
        generator("a", "b", 1),
        generator("b", "a", 2),
        discriminator("a", 3),
        discriminator("b", 4),
    )


@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_architecture_options_train_as_the_official_step(case):
    torch = pytest.importorskip("torch", reason="the [torch] extra is not installed")
    from cyclegan_tf.tools.torch_import import detect_generator
    from tests.models import torch_cyclegan

    options = OPTION_CASES[case]
    learning_rate = 0.05
    g_ab, g_ba, d_a, d_b = _torch_networks(options, seed=len(case))
    model = _tiny(**options)
    for ours, theirs in ((model.generator_ab, g_ab), (model.generator_ba, g_ba)):
        state = {key: value.numpy() for key, value in theirs.state_dict().items()}
        ours.set_weights(detect_generator(state).generator.get_weights())
    torch_cyclegan.copy_weights(d_a, model.discriminator_a)
    torch_cyclegan.copy_weights(d_b, model.discriminator_b)
    model.compile(
        generator_optimizer=keras.optimizers.SGD(learning_rate),
        discriminator_optimizer=keras.optimizers.SGD(learning_rate),
        run_eagerly=True,
    )
    rng = np.random.default_rng(len(case))
    unet = model.generator_kind == "unet_128"
    batch, height, width = (1, 128, 128) if unet else (2, SIZE, 24)
    real_a = rng.uniform(-1, 1, (batch, height, width, model.input_nc)).astype("float32")
    real_b = rng.uniform(-1, 1, (batch, height, width, model.output_nc)).astype("float32")
    alpha_a, alpha_b = (model.penalty_mixing(0, stream, batch).numpy() for stream in (0, 1))

    before = {w.path: w.numpy() for w in model.trainable_weights}
    logs = model.train_on_batch(real_a, real_b, return_dict=True)
    step = torch_cyclegan.CycleGANStep(
        g_ab, g_ba, d_a, d_b, model.gan_mode, learning_rate, model.lambda_identity
    )
    nchw = {"a": torch.from_numpy(real_a).permute(0, 3, 1, 2).contiguous()}
    nchw["b"] = torch.from_numpy(real_b).permute(0, 3, 1, 2).contiguous()
    terms = step.step(nchw["a"], nchw["b"], torch.from_numpy(alpha_a), torch.from_numpy(alpha_b))
    for name, value in terms.items():
        assert logs[name] == pytest.approx(value, abs=1e-4), name

    updated = {}
    for ours, theirs in ((model.generator_ab, g_ab), (model.generator_ba, g_ba)):
        state = {key: value.detach().numpy() for key, value in theirs.state_dict().items()}
        updated[ours.name] = detect_generator(state).generator.trainable_weights
    for keras_d, torch_d in ((model.discriminator_a, d_a), (model.discriminator_b, d_b)):
        twin = keras.models.clone_model(keras_d)
        torch_cyclegan.copy_weights(torch_d, twin)
        updated[keras_d.name] = twin.trainable_weights
    moved = 0.0
    networks = (
        model.generator_ab,
        model.generator_ba,
        model.discriminator_a,
        model.discriminator_b,
    )
    for network in networks:
        for ours, theirs in zip(network.trainable_weights, updated[network.name], strict=True):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-4, err_msg=ours.path)
            moved = max(moved, float(np.abs(ours.numpy() - before[ours.path]).max()))
    assert moved > 1e-3  # the step changed the weights, so matching them says something
