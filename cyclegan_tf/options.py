"""Options as data: dataclass fields that carry their help, and the one way they become flags.

A dataclass of options (``TrainConfig``, ``BenchmarkOptions``) declares each field with ``option``:
its default, help text, choices and ``--help`` group. ``add_arguments`` turns such a dataclass into
``argparse`` flags, one per field (``image_size`` → ``--image-size``), and ``from_args`` builds the
dataclass back from the parsed namespace, so a command-line tool never copies fields by hand. The
values are checked by the dataclass that owns them, not by the parser.

A field may have aliases: other spellings of the same option (the official releases' ``--netD``
for ``discriminator``), each a plain second name or a translation of its values into values of one
or more fields (``--netG resnet_6blocks`` is ``generator="resnet"``, ``n_res_blocks=6``). The field
stays the one owner and its default the one default; flags that set the same option to different
values are refused in one line.

Bottom layer: imports nothing of this package.

Example:
    ```python
    @dataclasses.dataclass
    class Options:
        image_size: int = option(256, "Image side in pixels.")

    parser = argparse.ArgumentParser()
    add_arguments(parser, Options)
    options = from_args(Options, parser.parse_args(["--image-size", "64"]))
    ```
"""

import argparse
import dataclasses
import types


def option(default, help, choices=None, group=None, parse=None, aliases=None):  # noqa: A002
    """A dataclass field that ``add_arguments`` turns into a flag.

    Args:
        default: the default value.
        help: str, the ``--help`` text.
        choices: tuple or None, the values the flag accepts.
        group: str or None, the ``--help`` section the flag is listed in.
        parse: callable or None, turns the flag's text into the value (default: from the field's
            type: int, float or str).
        aliases: dict or None, ``{alias name: None}`` for another name of the same option
            (``n_layers_D`` → ``--n-layers-D``), or ``{alias name: {alias value: {field: value}}}``
            for one whose values stand for values of this and other fields.

    Returns:
        A ``dataclasses.Field``.
    """
    metadata = {
        "help": help,
        "choices": choices,
        "group": group,
        "parse": parse,
        "aliases": aliases or {},
    }
    return dataclasses.field(default=default, metadata=metadata)


def flag_name(name):
    """The flag of an option: ``image_size`` → ``--image-size``."""
    return f"--{name.replace('_', '-')}"


def comma_list(item_type=str):
    """A ``parse`` for comma-separated values: ``"256,1024"`` → ``(256, 1024)`` with ``int``."""

    def parse(text):
        return tuple(item_type(item.strip()) for item in text.split(",") if item.strip())

    parse.__name__ = f"comma-separated {item_type.__name__}"
    return parse


def add_arguments(parser, options_class, flags=None):
    """Adds one flag per field of ``options_class`` to an ``argparse`` parser.

    A bool field that defaults to False becomes a switch (``--jit-compile``); one that defaults to
    True a switch that turns it off (``--no-<name>``, or the flag ``flags`` gives); one that defaults
    to None (chosen later, e.g. by the training objective) a pair (``--antialias``/``--no-antialias``)
    that leaves it None unless given.

    Args:
        parser: an ``argparse.ArgumentParser``.
        options_class: a dataclass whose fields were made by ``option``.
        flags: dict or None, ``{field name: flag}`` where the flag is not ``flag_name(field)``.
    """
    flags = flags or {}
    groups = {}
    fields = {field.name: field for field in dataclasses.fields(options_class)}
    aliased = set()
    for field in fields.values():
        for values in field.metadata.get("aliases", {}).values():
            aliased.add(field.name)
            aliased.update(name for targets in (values or {}).values() for name in targets)
    for field in dataclasses.fields(options_class):
        metadata = field.metadata
        group_name = metadata.get("group")
        if group_name is None:
            target = parser
        else:
            if group_name not in groups:
                groups[group_name] = parser.add_argument_group(group_name)
            target = groups[group_name]
        kwargs = {"default": field.default, "help": metadata["help"], "dest": field.name}
        if _base_type(field.type) is bool and field.default is None:
            target.add_argument(
                flags.get(field.name) or flag_name(field.name),
                action=argparse.BooleanOptionalAction,
                **kwargs,
            )
            continue
        if _base_type(field.type) is bool:
            default_on = bool(field.default)
            flag = flags.get(field.name) or (
                f"--no-{field.name.replace('_', '-')}" if default_on else flag_name(field.name)
            )
            target.add_argument(
                flag, action="store_false" if default_on else "store_true", **kwargs
            )
            continue
        kwargs["type"] = metadata.get("parse") or _base_type(field.type)
        if metadata.get("choices"):
            kwargs["choices"] = metadata["choices"]
        if field.name in aliased:
            kwargs["action"] = _OwnedValue
        flag = flags.get(field.name) or flag_name(field.name)
        target.add_argument(flag, metavar=field.name.upper(), **kwargs)
        for alias, values in metadata.get("aliases", {}).items():
            _add_alias(target, field, alias, values, kwargs)


def _add_alias(target, field, alias, values, kwargs):
    """The flag of another spelling of ``field``: the same values, or values that stand for others."""
    flag = flag_name(alias)
    if values is None:
        target.add_argument(
            flag,
            metavar=field.name.upper(),
            type=kwargs["type"],
            choices=kwargs.get("choices"),
            dest=field.name,
            default=argparse.SUPPRESS,
            action=_OwnedValue,
            help=f"The same as {flag_name(field.name)}.",
        )
        return
    meanings = "; ".join(
        f"{value}: " + ", ".join(f"{flag_name(key)} {item}" for key, item in targets.items())
        for value, targets in values.items()
    )
    target.add_argument(
        flag,
        choices=tuple(values),
        dest=f"{_ALIAS_PREFIX}{alias}",
        default=argparse.SUPPRESS,
        action=_Alias,
        meanings=values,
        help=f"The official spelling: {meanings}.",
    )


# Where the parsed namespace keeps which flag set each aliased option, and the alias flags' values.
_GIVEN = "_options_given"
_ALIAS_PREFIX = "_alias_"


def _set_owned(parser, namespace, field, value, flag, given_as):
    """Sets ``field``, refusing in one line a value that another flag set differently.

    ``flag`` is the flag (repeating one keeps the last value, as argparse does), ``given_as`` the
    flag and its value as the user wrote them.
    """
    given = getattr(namespace, _GIVEN, None)
    if given is None:
        given = {}
        setattr(namespace, _GIVEN, given)
    if field in given and given[field][0] != flag and given[field][2] != value:
        _, other, other_value = given[field]
        parser.exit(
            2,
            f"{parser.prog}: error: {given_as} conflicts with {other}: they set "
            f"{flag_name(field)} to {value} and {other_value}; give one of them\n",
        )
    given[field] = (flag, given_as, value)
    setattr(namespace, field, value)


class _OwnedValue(argparse.Action):
    """Stores a flag's value, refusing another spelling's different value for the same option."""

    def __call__(self, parser, namespace, values, option_string=None):
        given_as = f"{option_string} {values}"
        _set_owned(parser, namespace, self.dest, values, option_string, given_as)


class _Alias(argparse.Action):
    """A flag whose values stand for values of other options (``--netG resnet_6blocks``)."""

    def __init__(self, *args, meanings, **kwargs):
        super().__init__(*args, **kwargs)
        self.meanings = meanings

    def __call__(self, parser, namespace, values, option_string=None):
        given_as = f"{option_string} {values}"
        for field, value in self.meanings[values].items():
            _set_owned(parser, namespace, field, value, option_string, given_as)


def from_args(options_class, namespace):
    """Builds ``options_class`` from an ``argparse`` namespace that ``add_arguments`` filled."""
    return options_class(
        **{
            field.name: getattr(namespace, field.name)
            for field in dataclasses.fields(options_class)
        }
    )


def _base_type(annotation):
    """``int`` for ``int`` and ``int | None``; ``str`` for anything not int, float or bool."""
    if isinstance(annotation, types.UnionType):
        annotation = next(arg for arg in annotation.__args__ if arg is not type(None))
    return annotation if annotation in (int, float, bool) else str
