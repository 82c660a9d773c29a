"""The Keras generator inside a SavedModel exported by this package, so that it can run tiled.

A loaded SavedModel offers only its signatures, which run the whole image at once. Our exports track
the generator's variables under their Keras paths (``stem_conv/kernel``, ``res_0/conv_1/bias``...), so
the ``resnet_generator`` they came from can be rebuilt with the same weights and translated by the
tiled engine: the same result, in bounded memory. Other SavedModels are left to their signatures.
"""

import re

from cyclegan_tf.models.generators import resnet_generator

_BLOCK_KERNEL = re.compile(r"res_(\d+)/conv_1/kernel")


def generator_from_saved_model(loaded):
    """Rebuilds the ``resnet_generator`` a loaded SavedModel was exported from.

    Args:
        loaded: what ``tf.saved_model.load`` returned.

    Returns:
        A ``keras.Model`` with the SavedModel's weights, or None when its variables are not exactly
        those of a ``resnet_generator`` (another architecture, or not exported by this package).
    """
    variables = {
        variable.name.rsplit(":", 1)[0]: variable for variable in getattr(loaded, "variables", ())
    }
    stem = variables.get("stem_conv/kernel")
    if stem is None or len(stem.shape) != 4:
        return None
    n_res_blocks = sum(1 for name in variables if _BLOCK_KERNEL.fullmatch(name))
    generator = resnet_generator(
        ngf=int(stem.shape[3]), n_res_blocks=n_res_blocks, channels=int(stem.shape[2])
    )
    weights = {weight.path: weight for weight in generator.weights}
    if set(weights) != set(variables) or any(
        tuple(weights[name].shape) != tuple(variable.shape) for name, variable in variables.items()
    ):
        return None
    for name, variable in variables.items():
        weights[name].assign(variable)
    return generator
