"""``OBJECTIVES``: the training objectives by name, each a ``GAN`` subclass loaded on first use.

The registry names each objective's class by its module path, so that the command line can list the
objectives (``--objective``) before TensorFlow is imported. A new objective is one module in
``models/`` (a ``GAN`` subclass with its declarations) and one line here.
"""

import importlib

OBJECTIVES = {
    "cyclegan": "cyclegan_tf.models.cyclegan.CycleGAN",
    "cut": "cyclegan_tf.models.cut.CUT",
    "fastcut": "cyclegan_tf.models.cut.FastCUT",
}


def get_objective(name):
    """The ``GAN`` subclass registered as ``name``.

    Args:
        name: str, one of ``OBJECTIVES``.

    Returns:
        The class (``CycleGAN``, ``CUT`` …).

    Raises:
        ValueError: naming the registered objectives.
    """
    if name not in OBJECTIVES:
        raise ValueError(
            f"objective must be one of {list(OBJECTIVES)}. Received: objective={name!r}"
        )
    module, _, attribute = OBJECTIVES[name].rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def objective_name(model_class):
    """The registered name of an objective class (``"cyclegan"`` for ``CycleGAN``)."""
    path = f"{model_class.__module__}.{model_class.__qualname__}"
    for name, registered in OBJECTIVES.items():
        if registered == path:
            return name
    raise ValueError(f"{model_class.__name__} is not a registered objective ({list(OBJECTIVES)})")
