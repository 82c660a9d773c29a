"""The memory budget of one translation: its default and its check.

Kept apart from the translators, which load TensorFlow, so that the commands show the default in
``--help`` at once.
"""

from cyclegan_tf.errors import OptionError

DEFAULT_MAX_MEMORY_GB = 4.0


def check_max_memory_gb(max_memory_gb):
    """Returns ``max_memory_gb`` as a float; raises ``OptionError`` unless it is a positive number."""
    try:
        value = float(max_memory_gb)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise OptionError(
            "max_memory_gb", f"must be a positive number of GiB. Received: {max_memory_gb!r}"
        )
    return value
