"""The Keras generator inside a SavedModel exported by this package, so that it can run tiled.

A loaded SavedModel offers only its signatures, which run the whole image at once. Our exports record
the generator's config (``ResnetGenerator.get_config``) in a variable collection,
``generator_config``, and track the generator's variables in order; the generator
is rebuilt from that config, the weights are copied in order (every shape checked), and the tiled
engine translates with it: the same result, in bounded memory. A U-Net (``UnetGenerator``, whose
config has ``num_downs``) is rebuilt the same way; it cannot be tiled, and its memory model then
bounds the images it translates whole.

Exports written before 0.2 have no recorded config: their architecture is read from the variables'
structure instead (``ngf`` and ``channels`` from the first kernel, ``n_res_blocks`` from the count).
Any other SavedModel is left to its signatures.
"""

import json

from cyclegan_tf.models.generators import ResnetGenerator
from cyclegan_tf.models.unet import UnetGenerator

CONFIG_COLLECTION = "generator_config"
# Variables of a ResNet generator besides its residual blocks (kernel and bias of the stem, the two
# downsamplings, the two upsamplings and the head), and of each block (two kernels and biases).
_OUTER_VARIABLES = 12
_BLOCK_VARIABLES = 4


def recorded_config(loaded):
    """The ``ResnetGenerator`` config an export recorded, or None (an older or foreign SavedModel)."""
    collection = getattr(loaded, CONFIG_COLLECTION, None)
    if not collection:
        return None
    return json.loads(collection[0].numpy().decode("utf-8"))


def _inferred_config(variables):
    """The config of a pre-0.2 export, from its variables' count and first kernel; None if no fit."""
    blocks, extra = divmod(len(variables) - _OUTER_VARIABLES, _BLOCK_VARIABLES)
    if blocks < 0 or extra or len(variables[0].shape) != 4:
        return None
    _, _, channels, ngf = (int(size) for size in variables[0].shape)
    return {"ngf": ngf, "n_res_blocks": blocks, "channels": channels}


def generator_from_saved_model(loaded):
    """Rebuilds the ``ResnetGenerator`` a loaded SavedModel was exported from.

    The rebuilt generator computes in this process's dtype policy (the export's signatures take and
    return float32 whatever the policy of the model that was exported).

    Args:
        loaded: what ``tf.saved_model.load`` returned.

    Returns:
        A ``ResnetGenerator`` (or ``UnetGenerator``) with the SavedModel's weights, or None when
        its variables are not those of one (another architecture, or not exported by this package).
    """
    variables = list(getattr(loaded, "variables", ()))
    if not variables:
        return None
    config = recorded_config(loaded) or _inferred_config(variables)
    if config is None:
        return None
    config = {key: value for key, value in config.items() if key not in ("dtype", "trainable")}
    generator_class = UnetGenerator if "num_downs" in config else ResnetGenerator
    try:
        generator = generator_class.from_config(config)
    except (TypeError, ValueError):
        return None
    # ``variables``, not ``weights``: a dropout's seed state is tracked (and exported) too.
    if [tuple(w.shape) for w in generator.variables] != [tuple(v.shape) for v in variables]:
        return None
    for weight, variable in zip(generator.variables, variables):
        weight.assign(variable)
    return generator
