"""``CycleGAN``: two generators and two discriminators trained jointly with ``model.fit``."""

import keras
import tensorflow as tf

from cyclegan_tf import pixels
from cyclegan_tf.errors import OptionError
from cyclegan_tf.models import losses
from cyclegan_tf.models.discriminators import build_discriminator
from cyclegan_tf.models.gan import GAN, default_optimizer
from cyclegan_tf.models.generators import build_generator
from cyclegan_tf.models.image_pool import ImagePool
from cyclegan_tf.models.unet import check_unet_size

# The seed's log names: the mean of the two directions for each term (g_loss is the reference's sum).
_SUMMARY_METRICS = ("d_loss", "g_loss", "adv", "cycle", "identity")
_DIRECTION_METRICS = (
    "d_a",
    "d_b",
    "adv_ab",
    "adv_ba",
    "cycle_aba",
    "cycle_bab",
    "identity_a",
    "identity_b",
)
_VALIDATION_METRICS = ("cycle", "identity", "cycle_aba", "cycle_bab", "identity_a", "identity_b")
# Each summary term is the mean of its two directions.
_DIRECTION_PAIRS = {
    "adv": ("adv_ab", "adv_ba"),
    "cycle": ("cycle_aba", "cycle_bab"),
    "identity": ("identity_a", "identity_b"),
}


@keras.saving.register_keras_serializable(package="cyclegan_tf")
class CycleGAN(GAN):
    """CycleGAN: unpaired translation between image domains A and B.

    The four networks, named once against the paper and the seed repository's files:

    ============== ========= ================= ===============================================
    attribute      paper     seed file         role
    ============== ========= ================= ===============================================
    generator_ab   G         netG_A2B.keras    translates A to B (apple to orange)
    generator_ba   F         netG_B2A.keras    translates B to A (orange to apple)
    discriminator_a D_X      netD_A.keras      tells real A from F(B)
    discriminator_b D_Y      netD_B.keras      tells real B from G(A)
    ============== ========= ================= ===============================================

    ``train_step`` follows the reference's ``optimize_parameters``: one forward pass of both cycles; the
    generators are updated on the joint objective (both adversarial terms, both cycle terms and both
    identity terms reach both generators); the discriminators are updated on ``0.5 * (real + fake)``,
    the fakes drawn from an image pool and produced by the generators before their update.

    Args:
        ngf: int, generator filters. Defaults to 64.
        ndf: int, discriminator filters. Defaults to 64.
        n_res_blocks: int, residual blocks per generator. Defaults to 9.
        n_disc_layers: int, stride-2 layers per discriminator. Defaults to 3.
        discriminator_kind: str, ``"patch"`` (the reference PatchGAN), ``"pixel"`` (its 1x1
            PixelGAN) or ``"global"``. Defaults to ``"patch"``.
        gan_mode: str, ``"lsgan"``, ``"vanilla"`` or ``"wgangp"`` (with the gradient penalty).
            Defaults to ``"lsgan"``.
        lambda_cycle: float, weight of each cycle-consistency term. Defaults to 10.
        lambda_identity: float, identity weight relative to ``lambda_cycle``; 0 skips the identity
            passes. Defaults to 0.5.
        pool_size: int, generated images remembered per domain; 0 disables the pools. Defaults to 50.
        image_size: int, the training crop size (the image pools hold images of this size), or None
            for training images of sizes of their own (``--preprocess scale_width`` or ``none``: the
            pools then keep images of any size, one per batch). Defaults to 256.
        antialias: bool, CUT's blurred sampling in every network (``ResnetGenerator``,
            ``patch_discriminator``) instead of the reference's strided one. Defaults to False.
        antialias_up: bool or None, blurred upsampling in the generators (None: as ``antialias``).
        init_type: str, the initialisation (``initializers.INIT_TYPES``). Defaults to ``"normal"``.
        init_gain: float, its scale. Defaults to 0.02.
        seed: int, seed of the image pools and of the gradient penalty's mixing. Defaults to 0.
        generator_kind: str, the generators' architecture (``generators.GENERATORS``). Defaults to
            ``"resnet"``.
        norm: str, the networks' norm: ``"instance"``, ``"batch"`` or ``"none"``. Defaults to
            ``"instance"``.
        affine_norm: bool, the instance norms' learned scale and shift. Defaults to False.
        dropout: bool, dropout in the generators (the official ``--no_dropout`` off). Defaults to
            False.
        input_nc: int, channels of domain A's images. Defaults to 3.
        output_nc: int, channels of domain B's images. Defaults to 3.
        **kwargs: Base ``keras.Model`` keyword arguments.

    Example:
        >>> model = CycleGAN(ngf=8, ndf=8, n_res_blocks=1, image_size=32)
        >>> model.compile()
        >>> history = model.fit(dataset_of_a_b_pairs, epochs=1, steps_per_epoch=2)  # doctest: +SKIP

    Reference:
        Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks",
        ICCV 2017.
    """

    NETWORKS = {
        "generator_ab": "netG_A2B.keras",
        "generator_ba": "netG_B2A.keras",
        "discriminator_a": "netD_A.keras",
        "discriminator_b": "netD_B.keras",
    }
    TRANSLATIONS = {"A2B": "generator_ab", "B2A": "generator_ba"}
    OPTIMIZER_GROUPS = {
        "generator": ("generator_ab", "generator_ba"),
        "discriminator": ("discriminator_a", "discriminator_b"),
    }
    SUMMARY_KEYS = _SUMMARY_METRICS
    LOG_KEYS = _SUMMARY_METRICS + _DIRECTION_METRICS
    VALIDATION_KEYS = _VALIDATION_METRICS
    SAMPLE_COLUMNS = ("real A", "A→B", "A→B→A", "real B", "B→A", "B→A→B")
    OPTIONS = ("lambda_cycle", "lambda_identity", "pool_size")
    EPOCHS = (200, 100)  # the reference's --n_epochs 100 --n_epochs_decay 100

    def __init__(
        self,
        ngf=64,
        ndf=64,
        n_res_blocks=9,
        n_disc_layers=3,
        discriminator_kind="patch",
        gan_mode="lsgan",
        lambda_cycle=10.0,
        lambda_identity=0.5,
        pool_size=50,
        image_size=256,
        antialias=False,
        antialias_up=None,
        init_type="normal",
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
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ValueError(
                "Loss weights must be >= 0. "
                f"Received: lambda_cycle={lambda_cycle}, lambda_identity={lambda_identity}"
            )
        type(self).check_options(
            lambda_identity=lambda_identity,
            input_nc=input_nc,
            output_nc=output_nc,
            generator_kind=generator_kind,
            image_size=image_size,
        )
        if image_size is not None:
            pixels.check_size_multiple("image_size", image_size)
        self.ngf = ngf
        self.ndf = ndf
        self.n_res_blocks = n_res_blocks
        self.n_disc_layers = n_disc_layers
        self.discriminator_kind = discriminator_kind
        self.gan_mode = gan_mode
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_identity = float(lambda_identity)
        self.pool_size = pool_size
        self.image_size = image_size
        self.antialias = bool(antialias)
        self.antialias_up = self.antialias if antialias_up is None else bool(antialias_up)
        self.init_type = init_type
        self.init_gain = float(init_gain)
        self.seed = seed
        self.generator_kind = generator_kind
        self.norm = norm
        self.affine_norm = bool(affine_norm)
        self.dropout = bool(dropout)
        self.input_nc = int(input_nc)
        self.output_nc = int(output_nc)
        self._gan_loss = losses.get_gan_loss(gan_mode)

        init = {"init_type": init_type, "init_gain": init_gain}
        norms = {"norm": norm, "affine_norm": self.affine_norm}
        gen_args = {
            "ngf": ngf,
            "n_res_blocks": n_res_blocks,
            "antialias": self.antialias,
            "antialias_up": self.antialias_up,
            "dropout": self.dropout,
            **norms,
            **init,
        }
        self.generator_ab = build_generator(
            generator_kind,
            channels=self.input_nc,
            output_channels=self.output_nc,
            name="netG_A2B",
            **gen_args,
        )
        self.generator_ba = build_generator(
            generator_kind,
            channels=self.output_nc,
            output_channels=self.input_nc,
            name="netG_B2A",
            **gen_args,
        )
        disc_args = {
            "kind": discriminator_kind,
            "ndf": ndf,
            "n_layers": n_disc_layers,
            "antialias": self.antialias,
            **norms,
            **init,
        }
        self.discriminator_a = build_discriminator(
            channels=self.input_nc, name="netD_A", **disc_args
        )
        self.discriminator_b = build_discriminator(
            channels=self.output_nc, name="netD_B", **disc_args
        )
        # float32 whatever the policy: a mixed policy would autocast the pool's variables to tensors.
        pool_args = {"dtype": "float32"}
        self.pool_a = ImagePool(
            pool_size,
            (image_size, image_size, self.input_nc),
            seed=seed,
            name="pool_a",
            **pool_args,
        )
        self.pool_b = ImagePool(
            pool_size,
            (image_size, image_size, self.output_nc),
            seed=seed + 1,
            name="pool_b",
            **pool_args,
        )
        self.built = True

    @classmethod
    def check_options(
        cls,
        lambda_identity=0.5,
        input_nc=3,
        output_nc=3,
        generator_kind="resnet",
        image_size=256,
        **_,
    ):
        """Refuses an identity term between domains of different channel counts, and crops a U-Net cannot take.

        Raises:
            OptionError: for ``lambda_identity`` > 0 with ``input_nc`` != ``output_nc`` (the
                reference asserts the same: G(b) needs B's images to be A's shape), or a U-Net
                generator with training images whose sides are not multiples of its size multiple.
        """
        check_unet_size(generator_kind, image_size)
        if lambda_identity and lambda_identity > 0 and int(input_nc) != int(output_nc):
            raise OptionError(
                "lambda_identity",
                f"the identity term translates B's images with the A→B generator, which needs "
                f"input_nc == output_nc (got {input_nc} and {output_nc}); set it to 0. "
                f"Received: lambda_identity={lambda_identity}",
            )

    @property
    def generator_variables(self):
        """Trainable variables of both generators, updated by ``generator_optimizer``."""
        return self.group_variables("generator")

    @property
    def discriminator_variables(self):
        """Trainable variables of both discriminators, updated by ``discriminator_optimizer``."""
        return self.group_variables("discriminator")

    def compile(self, generator_optimizer=None, discriminator_optimizer=None, **kwargs):
        """Configures the two optimizers.

        Args:
            generator_optimizer: a ``keras.optimizers.Optimizer`` for both generators. Defaults to the
                reference's ``Adam(2e-4, beta_1=0.5)``.
            discriminator_optimizer: the same for both discriminators.
            **kwargs: Passed to ``keras.Model.compile`` (e.g. ``jit_compile``, ``steps_per_execution``).
                ``jit_compile`` defaults to False: XLA is opt-in.
        """
        super().compile(
            generator_optimizer=generator_optimizer,
            discriminator_optimizer=discriminator_optimizer,
            **kwargs,
        )

    def sample_images(self, images_a, images_b):
        """Real A, A→B, A→B→A, real B, B→A, B→A→B (``SAMPLE_COLUMNS``), in inference mode."""
        fake_b = self.generator_ab(images_a, training=False)
        fake_a = self.generator_ba(images_b, training=False)
        cycle_a = self.generator_ba(fake_b, training=False)
        cycle_b = self.generator_ab(fake_a, training=False)
        return images_a, fake_b, cycle_a, images_b, fake_a, cycle_b

    def train_step(self, data):
        real_a, real_b, _ = keras.utils.unpack_x_y_sample_weight(data)
        generator_grads, fake_a, fake_b, terms = self.jit_replica(self._generator_gradients)(
            real_a, real_b
        )
        pooled_fake_a = self.pool_a(fake_a)
        pooled_fake_b = self.pool_b(fake_b)
        discriminator_grads, d_terms = self.jit_replica(self._discriminator_gradients)(
            real_a, real_b, pooled_fake_a, pooled_fake_b
        )
        self.apply("generator", generator_grads)
        self.apply("discriminator", discriminator_grads)
        terms.update(d_terms)
        terms["g_loss"] = tf.add_n([terms[name] for name in terms if name not in d_terms])
        terms["d_loss"] = (d_terms["d_a"] + d_terms["d_b"]) / 2.0
        return self.report(_with_summaries(terms))

    def _generator_gradients(self, real_a, real_b):
        """The generators' joint objective: gradients, both fakes and the weighted terms."""
        with tf.GradientTape() as tape:
            fake_b = self.generator_ab(real_a, training=True)
            fake_a = self.generator_ba(real_b, training=True)
            terms = {
                "adv_ab": self._gan_loss(self.discriminator_b(fake_b, training=True), True),
                "adv_ba": self._gan_loss(self.discriminator_a(fake_a, training=True), True),
                **self._cycle_terms(
                    real_a, real_b, fake_a, fake_b, self.lambda_identity > 0, training=True
                ),
            }
            scaled = self.scaled_loss(tf.add_n(list(terms.values())), "generator")
        grads = self.gradients(tape, scaled, "generator")
        return grads, tf.stop_gradient(fake_a), tf.stop_gradient(fake_b), terms

    def _discriminator_gradients(self, real_a, real_b, fake_a, fake_b):
        """The discriminators' objective on real images and pooled fakes: gradients and terms."""
        with tf.GradientTape() as tape:
            terms = {
                "d_a": self._discriminator_loss(self.discriminator_a, real_a, fake_a, stream=0),
                "d_b": self._discriminator_loss(self.discriminator_b, real_b, fake_b, stream=1),
            }
            scaled = self.scaled_loss(terms["d_a"] + terms["d_b"], "discriminator")
        return self.gradients(tape, scaled, "discriminator"), terms

    def test_step(self, data):
        """Cycle and identity losses on held-out pairs (no adversarial terms: no update happens)."""
        real_a, real_b, _ = keras.utils.unpack_x_y_sample_weight(data)
        fake_b = self.generator_ab(real_a, training=False)
        fake_a = self.generator_ba(real_b, training=False)
        terms = self._cycle_terms(real_a, real_b, fake_a, fake_b, True, training=False)
        return self.report(_with_summaries(terms), self.VALIDATION_KEYS)

    def _cycle_terms(self, real_a, real_b, fake_a, fake_b, use_identity, training):
        """Weighted cycle (and identity) terms of the reference's generator objective."""
        terms = {
            "cycle_aba": self.lambda_cycle
            * losses.l1_loss(self.generator_ba(fake_b, training=training), real_a),
            "cycle_bab": self.lambda_cycle
            * losses.l1_loss(self.generator_ab(fake_a, training=training), real_b),
        }
        if use_identity:
            weight = self.lambda_cycle * self.lambda_identity
            terms["identity_a"] = weight * losses.l1_loss(
                self.generator_ba(real_a, training=training), real_a
            )
            terms["identity_b"] = weight * losses.l1_loss(
                self.generator_ab(real_b, training=training), real_b
            )
        return terms

    def _discriminator_loss(self, discriminator, real, fake, stream):
        terms = self.discriminator_terms(discriminator, real, fake, stream)
        return 0.5 * (terms["real"] + terms["fake"]) + terms["penalty"]

    def get_config(self):
        return {
            **super().get_config(),
            "ngf": self.ngf,
            "ndf": self.ndf,
            "n_res_blocks": self.n_res_blocks,
            "n_disc_layers": self.n_disc_layers,
            "discriminator_kind": self.discriminator_kind,
            "gan_mode": self.gan_mode,
            "lambda_cycle": self.lambda_cycle,
            "lambda_identity": self.lambda_identity,
            "pool_size": self.pool_size,
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


def _with_summaries(terms):
    """``terms`` with each summary term (``adv``, ``cycle``, ``identity``): its directions' mean."""
    for summary, (first, second) in _DIRECTION_PAIRS.items():
        if first in terms:
            terms[summary] = (terms[first] + terms[second]) / 2.0
    return terms


__all__ = ["CycleGAN", "default_optimizer"]
