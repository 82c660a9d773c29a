"""``CUT`` and ``FastCUT``: one generator, one discriminator and a PatchNCE projection head.

Contrastive Unpaired Translation (Park et al., ECCV 2020) learns A→B only. Instead of a second
generator and a cycle, a translated image must keep, patch by patch, what its source had at the same
place: the PatchNCE loss (``models.patchnce``) on the generator's own encoder maps. The defaults are the
official release's (``models/cut_model.py``, ``options/*``): anti-aliased networks, Xavier
initialisation with gain 0.02, LSGAN, no image pool, the NCE layers 0, 4, 8, 12 and 16 of the official
generator (named here ``input``, ``down_0``, ``down_1``, ``res_0``, ``res_4``), 256 patches per map,
τ = 0.07. CUT adds the identity term NCE(y, G(y)); FastCUT drops it, weighs NCE ten times and flips the
batch at random (flip equivariance). ``docs/objectives.md`` has the equations and each departure.
"""

import keras
import tensorflow as tf

from cyclegan_tf import pixels
from cyclegan_tf.errors import OptionError
from cyclegan_tf.models import losses
from cyclegan_tf.models.discriminators import build_discriminator
from cyclegan_tf.models.gan import GAN
from cyclegan_tf.models.generators import (
    build_generator,
    feature_map_side,
    feature_points,
    official_feature_indices,
)
from cyclegan_tf.models.patchnce import (
    PatchProjection,
    derive_seed,
    patch_nce_loss,
    random_bit,
    random_patch_ids,
    sample_patches,
)

# The official --nce_layers 0,4,8,12,16 on its anti-aliased nine-block generator, by meaning.
DEFAULT_NCE_LAYERS = ("input", "down_0", "down_1", "res_0", "res_4")
DEFAULT_NUM_PATCHES = 256
# Random streams of one step: the flip, then the patches of each NCE term (call) and map.
_FLIP_STREAM = 0
_STREAMS_PER_CALL = 64


def resolve_nce_layers(nce_layers, n_res_blocks, antialias):
    """The feature points named by ``nce_layers``, as a tuple of names (see ``feature_points``).

    Args:
        nce_layers: None (the official default: ``input, down_0, down_1, res_0, res_4``, leaving out
            ``res_4`` for a generator of fewer than five blocks), a comma-separated string or a
            sequence of names (``"res_0"``) or of the official release's layer indices (``12``,
            valid for the generator's sampling, see ``official_feature_indices``).
        n_res_blocks: int, the generator's residual blocks.
        antialias: bool, its downsampling (the official indices depend on it).

    Returns:
        tuple of str.

    Raises:
        OptionError: for ``nce_layers``, naming the layer that does not exist and the valid ones.
    """
    points = feature_points(n_res_blocks)
    if nce_layers is None:
        return tuple(point for point in DEFAULT_NCE_LAYERS if point in points)
    if isinstance(nce_layers, str):
        nce_layers = [item.strip() for item in nce_layers.split(",") if item.strip()]
    indices = official_feature_indices(n_res_blocks, antialias)
    by_index = {str(index): point for point, index in indices.items()}
    names = []
    for layer in nce_layers:
        name = by_index.get(str(layer), str(layer))
        if name not in points:
            valid = ", ".join(f"{point} ({indices[point]})" for point in points)
            raise OptionError(
                "nce_layers",
                f"{layer!r} is not a map of this generator; the maps (with the official index for "
                f"its sampling) are {valid}. Received: nce_layers={','.join(map(str, nce_layers))}",
            )
        names.append(name)
    if not names or len(set(names)) < len(names):
        raise OptionError(
            "nce_layers", f"must name one or more distinct maps. Received: {list(nce_layers)}"
        )
    return tuple(names)


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class CUT(GAN):
    """CUT: contrastive unpaired translation from domain A to domain B.

    The networks, named as the official release names them:

    ============= ========== ===============================================================
    attribute     file       role
    ============= ========== ===============================================================
    generator     netG.keras translates A to B (``ResnetGenerator``, anti-aliased)
    discriminator netD.keras tells real B from G(A) (PatchGAN, anti-aliased)
    projection    netF.keras the PatchNCE MLPs, one per NCE map (``PatchProjection``)
    ============= ========== ===============================================================

    ``train_step`` follows the official ``optimize_parameters``: the generator runs once on A (and B,
    concatenated, for the identity term), the batch flipped left-right with probability 1/2 under
    flip equivariance; the discriminator is updated first, on ``0.5 * (GAN(D(G(a)), fake) +
    GAN(D(b), real))``; then the generator and the projection head together (one optimizer; the
    official code has two Adams with the same settings, which update alike) on ``λ_GAN GAN(D'(G(a)),
    real)`` with the updated discriminator ``D'``, plus ``NCE(a, G(a))``, or with the identity term
    ``0.5 * (NCE(a, G(a)) + NCE(b, G(b)))``.

    Args:
        ngf: int, generator filters. Defaults to 64.
        ndf: int, discriminator filters. Defaults to 64.
        n_res_blocks: int, residual blocks of the generator. Defaults to 9.
        n_disc_layers: int, downsampling layers of the discriminator. Defaults to 3.
        discriminator_kind: str, ``"patch"``, ``"pixel"`` or ``"global"``. Defaults to ``"patch"``.
        gan_mode: str, ``"lsgan"``, ``"vanilla"`` or ``"wgangp"`` (with the gradient penalty).
            Defaults to ``"lsgan"``.
        lambda_gan: float, weight of the adversarial term (``--lambda_GAN``). Defaults to 1.
        lambda_nce: float, weight of each map's PatchNCE loss (``--lambda_NCE``). Defaults to 1.
        nce_idt: bool, add the identity term NCE(b, G(b)) (``--nce_idt``). Defaults to True.
        nce_layers: the maps of the loss (see ``resolve_nce_layers``). Defaults to None: the
            official ``input, down_0, down_1, res_0, res_4``.
        num_patches: int or None, patches per map and image; at most the smallest map's size. None:
            256, or all of a smaller map's locations (the official cap). Defaults to None.
        projection_units: int, width of the projection MLPs (``--netF_nc``). Defaults to 256.
        nce_temperature: float, τ (``--nce_T``). Defaults to 0.07.
        flip_equivariance: bool, flip the batch at random (``--flip_equivariance``). Defaults to
            False.
        image_size: int or None, the training crop size (checks ``num_patches``). Defaults to 256.
        antialias: bool, blurred downsampling in both networks. Defaults to True.
        antialias_up: bool or None, blurred upsampling in the generator (None: as ``antialias``).
        init_type: str, the initialisation. Defaults to ``"xavier"``.
        init_gain: float, its scale. Defaults to 0.02.
        seed: int, seed of the flips, the patch sampling and the gradient penalty's mixing.
            Defaults to 0.
        generator_kind: str, ``"resnet"``: PatchNCE reads a ResNet generator's stages.
        norm: str, the networks' norm: ``"instance"``, ``"batch"`` or ``"none"``. Defaults to
            ``"instance"`` (the official ``--normG``/``--normD``).
        affine_norm: bool, the instance norms' learned scale and shift. Defaults to False.
        dropout: bool, dropout in the generator's residual blocks. Defaults to False.
        input_nc: int, channels of domain A's images. Defaults to 3.
        output_nc: int, channels of domain B's images. Defaults to 3.
        **kwargs: Base ``keras.Model`` keyword arguments.

    Example:
        >>> model = CUT(ngf=8, ndf=8, n_res_blocks=1, image_size=32, num_patches=16)
        >>> model.compile()
        >>> history = model.fit(dataset_of_a_b_pairs, epochs=1, steps_per_epoch=2)  # doctest: +SKIP

    Reference:
        Park, Efros, Zhang and Zhu, "Contrastive Learning for Unpaired Image-to-Image Translation",
        ECCV 2020; ``CUTModel`` in the official release.
    """

    NETWORKS = {
        "generator": "netG.keras",
        "discriminator": "netD.keras",
        "projection": "netF.keras",
    }
    TRANSLATIONS = {"A2B": "generator"}
    OPTIMIZER_GROUPS = {
        "generator": ("generator", "projection"),
        "discriminator": ("discriminator",),
    }
    SUMMARY_KEYS = ("d_loss", "g_loss", "adv", "nce", "nce_y")
    LOG_KEYS = SUMMARY_KEYS + ("d_real", "d_fake")
    VALIDATION_KEYS = ("nce", "nce_y")
    SAMPLE_COLUMNS = ("real A", "A→B", "real B", "B→B")
    OPTIONS = (
        "lambda_gan",
        "lambda_nce",
        "nce_idt",
        "nce_layers",
        "num_patches",
        "projection_units",
        "nce_temperature",
        "flip_equivariance",
    )
    EPOCHS = (400, 200)  # the official --n_epochs 200 --n_epochs_decay 200

    def __init__(
        self,
        ngf=64,
        ndf=64,
        n_res_blocks=9,
        n_disc_layers=3,
        discriminator_kind="patch",
        gan_mode="lsgan",
        lambda_gan=1.0,
        lambda_nce=1.0,
        nce_idt=True,
        nce_layers=None,
        num_patches=None,
        projection_units=256,
        nce_temperature=0.07,
        flip_equivariance=False,
        image_size=256,
        antialias=True,
        antialias_up=None,
        init_type="xavier",
        init_gain=0.02,
        seed=0,
        generator_kind="resnet",
        norm="instance",
        affine_norm=False,
        dropout=False,
        input_nc=3,
        output_nc=3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for key, value in (("lambda_gan", lambda_gan), ("lambda_nce", lambda_nce)):
            if value < 0:
                raise ValueError(f"Loss weights must be >= 0. Received: {key}={value}")
        if image_size is not None:
            pixels.check_size_multiple("image_size", image_size)
        self.nce_layers = type(self).check_options(
            n_res_blocks=n_res_blocks,
            nce_layers=nce_layers,
            num_patches=num_patches,
            image_size=image_size,
            antialias=antialias,
            generator_kind=generator_kind,
            nce_idt=nce_idt,
            input_nc=input_nc,
            output_nc=output_nc,
        )
        self.ngf = ngf
        self.ndf = ndf
        self.n_res_blocks = n_res_blocks
        self.n_disc_layers = n_disc_layers
        self.discriminator_kind = discriminator_kind
        self.gan_mode = gan_mode
        self.lambda_gan = float(lambda_gan)
        self.lambda_nce = float(lambda_nce)
        self.nce_idt = bool(nce_idt)
        self.num_patches = None if num_patches is None else int(num_patches)
        self.projection_units = int(projection_units)
        self.nce_temperature = float(nce_temperature)
        self.flip_equivariance = bool(flip_equivariance)
        self.image_size = image_size
        self.antialias = bool(antialias)
        self.antialias_up = self.antialias if antialias_up is None else bool(antialias_up)
        self.init_type = init_type
        self.init_gain = float(init_gain)
        self.seed = int(seed)
        self.generator_kind = generator_kind
        self.norm = norm
        self.affine_norm = bool(affine_norm)
        self.dropout = bool(dropout)
        self.input_nc = int(input_nc)
        self.output_nc = int(output_nc)
        self._gan_loss = losses.get_gan_loss(gan_mode)

        init = {"init_type": init_type, "init_gain": init_gain}
        norms = {"norm": norm, "affine_norm": self.affine_norm}
        self.generator = build_generator(
            generator_kind,
            ngf=ngf,
            n_res_blocks=n_res_blocks,
            channels=self.input_nc,
            output_channels=self.output_nc,
            antialias=self.antialias,
            antialias_up=self.antialias_up,
            dropout=self.dropout,
            name="netG",
            **norms,
            **init,
        )
        self.discriminator = build_discriminator(
            kind=discriminator_kind,
            ndf=ndf,
            n_layers=n_disc_layers,
            channels=self.output_nc,
            antialias=self.antialias,
            name="netD",
            **norms,
            **init,
        )
        features = self.generator.feature_extractor(self.nce_layers)
        self.projection = PatchProjection(
            [int(output.shape[-1]) for output in features.outputs],
            units=projection_units,
            name="netF",
            **init,
        )
        # Both share the generator's layers; kept out of Keras' tracking so that its weights are
        # saved (and counted) once, as the generator's. The forward pass gives the translation and
        # the NCE maps of its input, which are the keys of the loss: no second pass of the sources.
        self._encoder = _Untracked(features)
        self._forward = _Untracked(self.generator.feature_extractor(self.nce_layers, True))
        self.built = True

    @classmethod
    def check_options(
        cls,
        n_res_blocks=9,
        nce_layers=None,
        num_patches=None,
        image_size=256,
        antialias=True,
        generator_kind="resnet",
        nce_idt=True,
        input_nc=3,
        output_nc=3,
        **_,
    ):
        """Checks the NCE maps and the patch count for a generator and crop size; returns the maps.

        Raises:
            OptionError: for ``nce_layers`` naming a map the generator does not have,
                ``num_patches`` above the locations of the smallest map at ``image_size``, a
                generator other than the ResNet (PatchNCE reads its stages), or the identity term
                between domains of different channel counts.
        """
        if generator_kind != "resnet":
            raise OptionError(
                "generator",
                "PatchNCE reads its maps from a ResNet generator's stages; use resnet "
                f"(--netG resnet_9blocks or resnet_6blocks). Received: {generator_kind}",
            )
        if nce_idt and int(input_nc) != int(output_nc):
            raise OptionError(
                "nce_idt",
                f"the identity term translates B's images, which needs input_nc == output_nc "
                f"(got {input_nc} and {output_nc}); turn it off (--no-nce-idt)",
            )
        names = resolve_nce_layers(nce_layers, n_res_blocks, antialias)
        if num_patches is not None:
            if int(num_patches) < 1:
                raise OptionError("num_patches", f"must be positive. Received: {num_patches}")
            if image_size is not None:
                side, point = min(
                    (feature_map_side(point, image_size, antialias), point) for point in names
                )
                if int(num_patches) > side * side:
                    raise OptionError(
                        "num_patches",
                        f"is larger than the {side}x{side} map {point} has at image_size "
                        f"{image_size} ({side * side} locations); sample at most that many. "
                        f"Received: num_patches={num_patches}",
                    )
        return names

    def flip_at(self, step):
        """Whether the batch of ``step`` is flipped (flip equivariance): a scalar bool tensor."""
        return random_bit(derive_seed(self.seed, step, _FLIP_STREAM))

    def patch_ids_at(self, step, call, locations):
        """The patch locations of one NCE term at ``step``: one ``int32`` tensor per map.

        Args:
            step: int or scalar tensor, the training step (the generator optimizer's iterations).
            call: int, 0 for NCE(a, G(a)), 1 for the identity term NCE(b, G(b)).
            locations: sequence of int or scalar tensors, each map's height times width.
        """
        wanted = DEFAULT_NUM_PATCHES if self.num_patches is None else self.num_patches
        streams = [1 + call * _STREAMS_PER_CALL + index for index in range(len(locations))]
        return [
            random_patch_ids(count, wanted, derive_seed(self.seed, step, stream))
            for count, stream in zip(locations, streams)
        ]

    def train_step(self, data):
        real_a, real_b, _ = keras.utils.unpack_x_y_sample_weight(data)
        step = tf.cast(self.generator_optimizer.iterations, tf.int64)  # a tensor, not a variable
        if self._jit_per_replica:
            return self._train_step_in_parts(real_a, real_b, step)
        count = tf.shape(real_a)[0]
        with tf.GradientTape() as tape:
            fake, flip, maps = self._translate(real_a, real_b, step)
            # The official update order: the discriminator first, on the same translation; the
            # generator's adversarial term then sees the updated discriminator.
            with tape.stop_recording():
                d_grads, d_terms = self._discriminator_gradients(
                    real_b, tf.stop_gradient(fake[:count])
                )
                self.apply("discriminator", d_grads)
            terms = self._generator_terms(real_a, real_b, fake, flip, maps, step)
            scaled = self.scaled_loss(terms["g_loss"], "generator")
        self.apply("generator", self.gradients(tape, scaled, "generator"))
        return self.report({**terms, **d_terms})

    def _train_step_in_parts(self, real_a, real_b, step):
        """The same update with each replica's work compiled by XLA apart from the optimizers.

        ``per_replica_jit`` keeps optimizer updates out of the compiled functions, so the generator's
        forward pass runs once for the discriminator's update and again under the generator's tape.
        """
        fake, _, _ = self.jit_replica(self._translate)(real_a, real_b, step)
        fake_b = fake[: tf.shape(real_a)[0]]
        d_grads, d_terms = self.jit_replica(self._discriminator_gradients)(real_b, fake_b)
        self.apply("discriminator", d_grads)
        g_grads, terms = self.jit_replica(self._generator_gradients)(real_a, real_b, step)
        self.apply("generator", g_grads)
        return self.report({**terms, **d_terms})

    def _generator_gradients(self, real_a, real_b, step):
        with tf.GradientTape() as tape:
            fake, flip, maps = self._translate(real_a, real_b, step)
            terms = self._generator_terms(real_a, real_b, fake, flip, maps, step)
            scaled = self.scaled_loss(terms["g_loss"], "generator")
        return self.gradients(tape, scaled, "generator"), terms

    def _sources(self, real_a, real_b):
        """The images the generator translates in one pass: A, and B with the identity term."""
        return tf.concat([real_a, real_b], axis=0) if self.nce_idt else real_a

    def _translate(self, real_a, real_b, step, training=True):
        """One generator pass on A (and B): the translations, the flip (or None), the NCE maps.

        Returns:
            ``(translated, flip, maps)``: G(a) (then G(b)) as one batch; whether the batch was
            flipped (None without flip equivariance); the NCE maps of the pass's input.
        """
        real = self._sources(real_a, real_b)
        flip = self.flip_at(step) if self.flip_equivariance and training else None
        if flip is not None:
            real = tf.where(flip, tf.reverse(real, axis=[2]), real)
        fake, *maps = self._forward.model(real, training=training)
        return fake, flip, maps

    def _discriminator_gradients(self, real_b, fake_b):
        with tf.GradientTape() as tape:
            d_terms = self.discriminator_terms(self.discriminator, real_b, fake_b)
            d_loss = 0.5 * (d_terms["fake"] + d_terms["real"]) + d_terms["penalty"]
            scaled = self.scaled_loss(d_loss, "discriminator")
        terms = {"d_loss": d_loss, "d_real": d_terms["real"], "d_fake": d_terms["fake"]}
        return self.gradients(tape, scaled, "discriminator"), terms

    def _generator_terms(self, real_a, real_b, fake, flip, maps, step, training=True):
        """The generator's objective: ``adv``, ``nce`` (and ``nce_y``) and their sum ``g_loss``.

        The keys of PatchNCE are the maps of the sources, which the translating pass computed (the
        official code computes them in a second pass): when the batch was flipped for it, they are
        computed again from the unflipped sources. The queries are the maps of the translations,
        computed in one pass for both terms.
        """
        count = tf.shape(real_a)[0]
        terms = {"adv": tf.constant(0.0), "nce": tf.constant(0.0)}
        if self.lambda_gan > 0 and training:
            logits = self.discriminator(fake[:count], training=True)
            terms["adv"] = self._gan_loss(logits, True) * self.lambda_gan
        if self.lambda_nce > 0:
            keys = maps
            if flip is not None:
                sources = self._sources(real_a, real_b)
                keys = tf.cond(
                    flip,
                    lambda: self._encoder.model(sources, training=training),
                    lambda: list(maps),
                )
            queries = self._encoder.model(fake, training=training)
            if flip is not None:  # the translations of flipped images, flipped back to match
                queries = [tf.where(flip, tf.reverse(q, axis=[2]), q) for q in queries]
            terms["nce"] = self._nce(
                [k[:count] for k in keys], [q[:count] for q in queries], step, 0
            )
            if self.nce_idt:
                terms["nce_y"] = self._nce(
                    [k[count:] for k in keys], [q[count:] for q in queries], step, 1
                )
        nce = 0.5 * (terms["nce"] + terms["nce_y"]) if "nce_y" in terms else terms["nce"]
        terms["g_loss"] = terms["adv"] + nce
        return terms

    def _nce(self, keys, queries, step, call):
        """PatchNCE between the maps of sources (keys) and of their translations (queries)."""
        ids = self.patch_ids_at(step, call, [tf.shape(k)[1] * tf.shape(k)[2] for k in keys])
        keys = self.projection([sample_patches(k, i) for k, i in zip(keys, ids)])
        queries = self.projection([sample_patches(q, i) for q, i in zip(queries, ids)])
        layer_losses = [
            tf.reduce_mean(patch_nce_loss(q, k, self.nce_temperature)) * self.lambda_nce
            for q, k in zip(queries, keys)
        ]
        return tf.add_n(layer_losses) / len(layer_losses)

    def test_step(self, data):
        """The PatchNCE terms on held-out pairs (no adversarial term: no update happens)."""
        real_a, real_b, _ = keras.utils.unpack_x_y_sample_weight(data)
        step = tf.cast(self.generator_optimizer.iterations, tf.int64)
        fake, _, maps = self._translate(real_a, real_b, step, training=False)
        terms = self._generator_terms(real_a, real_b, fake, None, maps, step, training=False)
        return self.report(terms, self.VALIDATION_KEYS)

    def sample_images(self, images_a, images_b):
        """Real A, A→B, real B, B→B (``SAMPLE_COLUMNS``), in inference mode."""
        fake_b = self.generator(images_a, training=False)
        identity_b = self.generator(images_b, training=False)
        return images_a, fake_b, images_b, identity_b

    def get_config(self):
        return {
            **super().get_config(),
            "ngf": self.ngf,
            "ndf": self.ndf,
            "n_res_blocks": self.n_res_blocks,
            "n_disc_layers": self.n_disc_layers,
            "discriminator_kind": self.discriminator_kind,
            "gan_mode": self.gan_mode,
            "lambda_gan": self.lambda_gan,
            "lambda_nce": self.lambda_nce,
            "nce_idt": self.nce_idt,
            "nce_layers": list(self.nce_layers),
            "num_patches": self.num_patches,
            "projection_units": self.projection_units,
            "nce_temperature": self.nce_temperature,
            "flip_equivariance": self.flip_equivariance,
            "image_size": self.image_size,
            "antialias": self.antialias,
            "antialias_up": self.antialias_up,
            "init_type": self.init_type,
            "init_gain": self.init_gain,
            "seed": self.seed,
            "generator_kind": self.generator_kind,
            "norm": self.norm,
            "affine_norm": self.affine_norm,
            "dropout": self.dropout,
            "input_nc": self.input_nc,
            "output_nc": self.output_nc,
        }


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class FastCUT(CUT):
    """FastCUT: CUT without the identity term, NCE weighed 10, flip equivariance, 150 + 50 epochs.

    The official ``--CUT_mode FastCUT`` defaults; every argument is ``CUT``'s.

    Reference:
        Park et al., "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020.
    """

    SUMMARY_KEYS = ("d_loss", "g_loss", "adv", "nce")
    LOG_KEYS = CUT.LOG_KEYS
    VALIDATION_KEYS = ("nce",)
    EPOCHS = (200, 50)  # the official --n_epochs 150 --n_epochs_decay 50

    def __init__(self, lambda_nce=10.0, nce_idt=False, flip_equivariance=True, **kwargs):
        super().__init__(
            lambda_nce=lambda_nce, nce_idt=nce_idt, flip_equivariance=flip_equivariance, **kwargs
        )


class _Untracked:
    """Holds an object where Keras does not track it (a model sharing another's layers)."""

    def __init__(self, model):
        self.model = model


__all__ = ["CUT", "DEFAULT_NCE_LAYERS", "FastCUT", "resolve_nce_layers"]
