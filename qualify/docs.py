"""The profile reference (docs/profile-reference.md), generated from the pydantic schema in qualify/profile/.

Why: a hand-written reference drifts from the schema the day a field is added; this one is written from
the schema's own types, defaults, bounds and descriptions, and tests/test_docs.py fails when the committed
file differs from what `qualify profile reference --output docs/profile-reference.md` writes now.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types as at
import yaml
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from qualify.durations import format_duration
from qualify.profile import BitsPerSecond, Profile, Revision, Seconds

# The profile's own value types, known by the validator that parses them (it is in the field's metadata).
_VALUE_TYPES = {get_args(Seconds)[1]: "duration", get_args(BitsPerSecond)[1]: "rate", get_args(Revision)[1]: "revision"}
_NONE = type(None)

_INTRO = """\
# Profile reference

<!-- Generated from qualify/profile/schema.py: do not edit. Regenerate with
     qualify profile reference --output docs/profile-reference.md -->

A profile is `profiles/<node>.yaml`. It may `extends:` shared bases (a file or a list, relative to the file
itself or to the profiles folder); bases are merged first, the file on top: mappings merge key by key,
everything else is replaced. Unknown keys are errors, so a typo never falls back to a default.
`qualify profile NODE` prints a node's profile merged, `qualify profile init NODE` writes one from the
live node.

Value types: a **duration** is `90s`, `30m`, `12h`, `1h30m`, `2d` or a number of seconds; a **rate** is
bits per second, `10G`, `9.4Gbit/s`, `940M` or a number (decimal units, as iperf3 and ethtool); a
**revision** is hexadecimal, `0x435`. *unset* means the key has no value unless the profile gives one
(its description says what is done then).
"""


@dataclass(frozen=True)
class Section:
    """One mapping of the profile: its dotted path and the model that validates it."""

    path: str  # "" for the top level; "checks.network.links[]" for the items of a list
    model: type[BaseModel]


def profile_reference(root: type[BaseModel] = Profile) -> str:
    """The reference of `root` and every section under it, in declaration order, as Markdown."""
    parts = [_INTRO]
    for section in sections(root):
        parts.append(_render_section(section))
    return "\n".join(parts)


def sections(root: type[BaseModel]) -> list[Section]:
    """`root` and every model reachable from its fields (directly, in a list or as a mapping's value)."""
    found: list[Section] = []

    def walk(path: str, model: type[BaseModel]) -> None:
        found.append(Section(path, model))
        for name, field in model.model_fields.items():
            inner, suffix = _nested_model(field.annotation)
            if inner is not None:
                walk(f"{path}.{name}{suffix}".lstrip("."), inner)

    walk("", root)
    return found


def undocumented(root: type[BaseModel] = Profile) -> list[str]:
    """Dotted keys of fields without a description (sections are described by their class docstring)."""
    return [_key(s.path, name) for s in sections(root) for name, field in s.model.model_fields.items()
            if not field.description and _nested_model(field.annotation)[0] is None]


def _render_section(section: Section) -> str:
    title = f"`{section.path}`" if section.path else "Top level"
    lines = [f"## {title}", ""]
    doc = inspect.getdoc(section.model) if section.model.__doc__ else None  # not pydantic's inherited one
    if doc:
        lines += [doc, ""]
    lines += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for name, field in section.model.model_fields.items():
        inner, suffix = _nested_model(field.annotation)
        if inner is not None and not suffix:  # a section of its own: a link, not a row of values
            target = _key(section.path, name)
            about = f"{field.description}: " if field.description else ""
            lines.append(f"| `{name}` | section | | | {_cell(about)}see [`{target}`](#{_anchor(target)}) |")
            continue
        type_text = _type_text(field.annotation, field.metadata)
        if inner is not None:
            target = _key(section.path, name) + suffix
            type_text = f"list of [`{target}`](#{_anchor(target)}) entries" if suffix == "[]" else \
                f"mapping of name to [`{target}`](#{_anchor(target)})"
        cells = [f"`{name}`", type_text, _default_text(field), _bounds_text(field), field.description or ""]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    return "".join(c for c in heading.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """(model, "") for a section, (model, "[]") for a list of them, (model, "{}") for a mapping to them."""
    annotation = _without_none(annotation)
    if _is_model(annotation):
        return annotation, ""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and args and _is_model(args[0]):
        return args[0], "[]"
    if origin is dict and len(args) == 2 and _is_model(args[1]):
        return args[1], "{}"
    return None, ""


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not _NONE]
        if len(members) == 1:
            return members[0]
    return annotation


def _type_text(annotation: Any, metadata: typing.Sequence[Any] = ()) -> str:
    if value_type := _value_type(metadata):  # Seconds, Revision, BitsPerSecond as a field's own type
        return value_type
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_text(args[0], list(args[1:]))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not _NONE)
    if origin is Literal:
        names = [f"`{a}`" for a in args]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    if origin in (list, tuple, set, frozenset):
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_text(args[0])} to {_type_text(args[1])}" if args else "mapping"
    plain = {bool: "boolean", int: "integer", float: "number", str: "text"}
    return plain.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "*unset*"
    if _is_duration(field) and isinstance(value, (int, float)):
        return f"`{_duration_text(value)}`"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()
    return f"`{text.removesuffix('...').strip()}`"  # safe_dump ends a lone scalar with '...'


def _is_duration(field: FieldInfo) -> bool:
    inner = _without_none(field.annotation)
    metadata = [*field.metadata, *(get_args(inner)[1:] if get_origin(inner) is Annotated else ())]
    return _value_type(metadata) == "duration"


def _value_type(metadata: typing.Iterable[Any]) -> str | None:
    return next((_VALUE_TYPES[m] for m in metadata if isinstance(m, BeforeValidator) and m in _VALUE_TYPES), None)


def _duration_text(seconds: float) -> str:
    return format_duration(seconds) if seconds == int(seconds) else f"{seconds:g}s"


def _bounds_text(field: FieldInfo) -> str:
    shown = []
    duration = _is_duration(field)
    for item in field.metadata:
        for kind, symbol in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤")):
            if isinstance(item, getattr(at, kind.capitalize())):
                limit = getattr(item, kind)
                shown.append(f"{symbol} {_duration_text(limit) if duration and limit else f'{limit:g}'}")
        if isinstance(item, at.MinLen):
            shown.append("not empty" if item.min_length == 1 else f"at least {item.min_length} long")
        if isinstance(item, at.MaxLen):
            shown.append(f"at most {item.max_length} long")
        if getattr(item, "pattern", None):
            shown.append(f"matches `{item.pattern}`")
    return ", ".join(shown)
