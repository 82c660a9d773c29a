"""``GAN``: what every training objective shares, and the declarations the rest of the package reads.

An objective (``CycleGAN``, ``CUT``, ``FastCUT``) is a ``GAN`` subclass that builds its networks in
``__init__``, writes its ``train_step`` with the helpers here, and declares, as class attributes:

* ``NETWORKS``: ``{attribute: file name}``, every network it trains and the ``.keras`` file a run keeps
  it in (the seed repository's names for CycleGAN: ``netG_A2B.keras`` …);
* ``TRANSLATIONS``: ``{direction: attribute}``, the generators a run exports and translates with
  (``"A2B"``, and ``"B2A"`` where the objective learns it);
* ``OPTIMIZER_GROUPS``: ``{group: attributes}``, the networks each optimizer updates; the first group's
  optimizer is ``model.optimizer``, whose iteration count is the training step;
* ``LOG_KEYS``: the losses it reports, the ``SUMMARY_KEYS`` first (``d_loss``, ``g_loss``, then the
  generator's terms: the progress line, the step scalars and the report's curves); ``VALIDATION_KEYS``,
  what its ``test_step`` reports;
* ``SAMPLE_COLUMNS``: the titles of the sample grid's columns, which ``sample_images`` computes;
* ``OPTIONS``: the training options (``TrainConfig`` fields and constructor arguments) that only it has,
  and ``EPOCHS``, its default ``(epochs, decay_epochs)``.

Callbacks, the run folder, the report, the trainer, the benchmark and the exports read these
declarations; none of them names a network or a loss of one objective. The base owns the optimizers
and their compile config, the loss scaling per replica (and per mixed-precision optimizer), XLA per
replica, the loss trackers, and the state a backup holds: every variable the model tracks (networks,
optimizers, and the objective's own state such as image pools), written by ``save_weights``.
"""

import keras
import tensorflow as tf

from cyclegan_tf import _keras_compat
from cyclegan_tf.models import losses
from cyclegan_tf.models.patchnce import derive_seed, random_unit_floats

# The random streams of the gradient penalty's mixing weights, apart from an objective's own
# (CUT's flips and patches use streams below 2**16).
_PENALTY_STREAM = 1 << 16


class GAN(_keras_compat.PrebuiltModelMixin, keras.Model):
    """The base of the training objectives: optimizers, loss scaling, XLA and loss trackers.

    Subclasses declare ``NETWORKS``, ``TRANSLATIONS``, ``OPTIMIZER_GROUPS``, ``LOG_KEYS``,
    ``SUMMARY_KEYS``, ``VALIDATION_KEYS``, ``SAMPLE_COLUMNS``, ``OPTIONS`` and ``EPOCHS`` (see the
    module docstring), build their networks in ``__init__`` after this one's, and implement
    ``train_step`` (with ``jit_replica``, ``gradients``, ``apply`` and ``report``), ``sample_images`` and
    ``get_config``.

    Args:
        **kwargs: Base ``keras.Model`` keyword arguments.
    """

    NETWORKS = {}
    TRANSLATIONS = {}
    OPTIMIZER_GROUPS = {}
    SUMMARY_KEYS = ("d_loss", "g_loss")
    LOG_KEYS = SUMMARY_KEYS
    VALIDATION_KEYS = ()
    SAMPLE_COLUMNS = ()
    OPTIONS = ()
    EPOCHS = (200, 100)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._jit_per_replica = False
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in self.LOG_KEYS}

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    @classmethod
    def check_options(cls, **options):
        """Checks constructor arguments without building anything (the training options' check).

        Args:
            **options: the constructor's arguments.

        Raises:
            OptionError: naming the argument whose value cannot work (an objective's own rules).
        """
        del options

    def networks(self):
        """``{attribute: network}`` of every network in ``NETWORKS``, in that order."""
        return {attribute: getattr(self, attribute) for attribute in self.NETWORKS}

    def translation_generators(self):
        """``{direction: generator}``: ``{"A2B": ...}``, and ``"B2A"`` where the objective has one."""
        return {direction: getattr(self, name) for direction, name in self.TRANSLATIONS.items()}

    def group_variables(self, group):
        """The trainable variables that the optimizer of ``group`` updates."""
        return [
            variable
            for attribute in self.OPTIMIZER_GROUPS[group]
            for variable in getattr(self, attribute).trainable_variables
        ]

    def optimizer_of(self, group):
        """The optimizer of ``group`` (attribute ``<group>_optimizer``)."""
        return getattr(self, f"{group}_optimizer")

    def compile(self, **kwargs):
        """Configures one optimizer per group of ``OPTIMIZER_GROUPS``.

        Args:
            **kwargs: ``<group>_optimizer`` for each group (``generator_optimizer``,
                ``discriminator_optimizer``): a ``keras.optimizers.Optimizer``, by default the
                reference's ``Adam(2e-4, beta_1=0.5)``; the rest goes to ``keras.Model.compile``
                (``jit_compile``, ``steps_per_execution``). ``jit_compile`` defaults to False: XLA is
                opt-in.
        """
        optimizers = {
            group: kwargs.pop(f"{group}_optimizer", None) or default_optimizer()
            for group in self.OPTIMIZER_GROUPS
        }
        if len({id(optimizer) for optimizer in optimizers.values()}) < len(optimizers):
            names = ", ".join(f"{group}_optimizer" for group in optimizers)
            raise ValueError(f"{names} must be distinct optimizer objects.")
        for group, optimizer in optimizers.items():
            setattr(self, f"{group}_optimizer", optimizer)
        self._jit_per_replica = _keras_compat.per_replica_jit(kwargs, self.distribute_strategy)
        # `model.optimizer` is the first group's so that its iteration count is the training step
        # that callbacks (TensorBoard, BackupAndRestore) read.
        super().compile(optimizer=next(iter(optimizers.values())), **kwargs)
        # Building before the first step keeps variable creation out of the traced train function.
        for group, optimizer in optimizers.items():
            optimizer.build(self.group_variables(group))

    def get_compile_config(self):
        return {
            f"{group}_optimizer": keras.saving.serialize_keras_object(self.optimizer_of(group))
            for group in self.OPTIMIZER_GROUPS
        }

    def compile_from_config(self, config):
        self.compile(
            **{key: keras.saving.deserialize_keras_object(value) for key, value in config.items()}
        )

    def call(self, images, training=False):
        """Translates images from domain A to domain B.

        Args:
            images: float tensor ``[batch, H, W, C]`` in [-1, 1], H and W multiples of 4.
            training: bool, passed to the generator.

        Returns:
            The translated images, same shape, in [-1, 1].
        """
        return self.translation_generators()["A2B"](images, training=training)

    def sample_images(self, images_a, images_b):
        """The columns of a sample grid (one per ``SAMPLE_COLUMNS`` title), in inference mode.

        Args:
            images_a: float tensor ``[n, H, W, C]`` in [-1, 1], fixed images of domain A.
            images_b: the same for domain B.

        Returns:
            A tuple of ``[n, H, W, C]`` tensors in [-1, 1].
        """
        raise NotImplementedError(f"{type(self).__name__} does not define sample_images")

    def jit_replica(self, function):
        """``function`` compiled with XLA for each replica's work, where ``compile`` asked for it."""
        return _keras_compat.jit_replica_function(function) if self._jit_per_replica else function

    def scaled_loss(self, loss, group):
        """``loss`` divided by the replica count, scaled by ``group``'s optimizer (fp16 loss scaling).

        Keras optimizers sum gradients across replicas, so dividing a per-replica mean by the replica
        count makes the update follow the mean over the global batch, whatever the number of replicas.
        Call it inside the ``GradientTape`` that ``gradients`` reads.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        loss = loss / replicas if replicas > 1 else loss
        return self.optimizer_of(group).scale_loss(loss)

    def gradients(self, tape, scaled_loss, group):
        """The gradients of a ``scaled_loss`` for ``group``'s variables (what ``apply`` takes)."""
        return tape.gradient(scaled_loss, self.group_variables(group))

    def apply(self, group, gradients):
        """Applies ``gradients`` (from ``gradients``) with ``group``'s optimizer."""
        self.optimizer_of(group).apply_gradients(zip(gradients, self.group_variables(group)))

    def discriminator_terms(self, discriminator, real, fake, stream=0):
        """A discriminator's loss on ``real`` and ``fake`` images: ``{"real", "fake", "penalty"}``.

        ``real`` and ``fake`` are the adversarial loss (``gan_mode``) of its logits against "real"
        and "fake"; ``penalty`` is WGAN-GP's gradient penalty at random mixes of the two
        (``losses.gradient_penalty``, weight 10) with ``gan_mode="wgangp"``, else 0. The official
        releases define the penalty (``cal_gradient_penalty``) but leave it out of their
        discriminator losses; here it is added to them, after their ``0.5 * (real + fake)``.

        The mixing weights are drawn from ``seed``, the step and ``stream`` (one per discriminator
        and call), and the replica: a resumed run draws what the uninterrupted one did. Subclasses
        set ``gan_mode`` and ``seed``.

        Args:
            discriminator: the ``keras.Model`` whose loss it is (called in training mode).
            real: float tensor ``[batch, H, W, C]``, real images.
            fake: float tensor of the same shape, generated images (not differentiated).
            stream: int, distinguishes the penalties of one step.

        Returns:
            dict of scalar tensors.
        """
        gan_loss = losses.get_gan_loss(self.gan_mode)
        terms = {
            "real": gan_loss(discriminator(real, training=True), True),
            "fake": gan_loss(discriminator(fake, training=True), False),
            "penalty": tf.constant(0.0),
        }
        if self.gan_mode == "wgangp":
            replica = tf.distribute.get_replica_context()
            replica_id = 0 if replica is None else replica.replica_id_in_sync_group
            step = tf.cast(self.optimizer.iterations, tf.int64)
            mixing = self.penalty_mixing(step, stream, tf.shape(real)[0], replica_id)
            terms["penalty"] = losses.gradient_penalty(discriminator, real, fake, mixing)
        return terms

    def penalty_mixing(self, step, stream, batch_size, replica_id=0):
        """The mixing weights ``discriminator_terms`` draws at ``step`` for ``stream``: ``[batch]``."""
        seed = derive_seed(self.seed, step, _PENALTY_STREAM + stream, replica_id)
        return random_unit_floats(batch_size, seed)

    def report(self, terms, keys=None):
        """Updates the loss trackers of ``keys`` (default: all) with ``terms``; returns their means.

        A term the step did not compute counts as 0 (an objective's optional term, switched off).
        """
        trackers = self.loss_trackers
        if keys is not None:
            trackers = {name: trackers[name] for name in keys}
        for name, tracker in trackers.items():
            tracker.update_state(terms.get(name, 0.0))
        results = {name: tracker.result() for name, tracker in trackers.items()}
        return _keras_compat.multi_worker_logs(results)


def default_optimizer(learning_rate=2e-4, beta_1=0.5):
    """The reference's optimizer: ``Adam(lr=2e-4, betas=(0.5, 0.999))``.

    Args:
        learning_rate: float or ``LearningRateSchedule``. Defaults to 2e-4.
        beta_1: float. Defaults to 0.5.

    Returns:
        A ``keras.optimizers.Adam``.
    """
    return keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta_1, beta_2=0.999)
