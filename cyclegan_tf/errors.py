"""Errors meant for the user, and the one way a message is shortened to one line."""


def first_line(error):
    r"""The first non-empty line of an exception's message, or its type name when it has none.

    TensorFlow errors carry multi-line graph traces; a user needs their first line only.

    Example:
        >>> first_line(ValueError("bad size\n  more detail"))
        'bad size'
        >>> first_line(KeyError())
        'KeyError'
    """
    text = str(getattr(error, "message", None) or error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


class OptionError(ValueError):
    """A bad value of a named argument; the command-line tools print it under the flag's name.

    Library code names the Python argument (``output_dir``); ``cyclegan_tf.cli`` prints the flag
    (``--output-dir``), so neither layer spells the other's names.

    Args:
        option: str, the argument's Python name.
        message: str, what is wrong, in one line (without the argument's name).

    Example:
        >>> str(OptionError("output_dir", "runs/a is a file, not a folder"))
        'output_dir: runs/a is a file, not a folder'
    """

    def __init__(self, option, message):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names the pip extra that installs it.

    Example:
        >>> str(MissingDependencyError("ONNX export needs the [onnx] extra: pip install 'cyclegan_tf[onnx]'"))
        "ONNX export needs the [onnx] extra: pip install 'cyclegan_tf[onnx]'"
    """
