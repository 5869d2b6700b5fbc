"""Loading a profile: finding it by node name, `extends:` bases, overlays, the bounded YAML reader
and validation errors that name the file that set the key, the key and what was expected.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import types
import typing
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from qualify.errors import ProfileError
from qualify.names import check_node_name
from qualify.profile.schema import DEFAULT_REQUIRE, Profile

# ---------------------------------------------------------------- loading


class LoadedProfile(BaseModel):
    """A validated profile and the files it came from (most basic first)."""

    model_config = ConfigDict(frozen=True)
    node: str
    profile: Profile
    sources: tuple[str, ...]


def profiles_dir() -> Path:
    return Path(os.environ.get("QUALIFY_PROFILES", "profiles")).resolve()


def known_nodes(directory: Path | None = None) -> list[str]:
    """Node profiles: the top-level YAML files of the profiles folder."""
    directory = directory or profiles_dir()
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_profile(node: str, path: Path | None = None, overlays: Sequence[Path] = (),
                 directory: Path | None = None) -> LoadedProfile:
    """Load `path` (default profiles/<node>.yaml) with its bases, then `overlays` on top."""
    check_node_name(node)  # profiles/<node>.yaml and reports/<node>/: a name, never a path
    directory = directory or profiles_dir()
    overlays = list(overlays)
    if path is None:
        path = directory / f"{node}.yaml"
        if not path.is_file() and overlays:  # a plug-in's node (the lab's) with no profile of its own
            path = overlays.pop(0)
        elif not path.is_file() and _is_destination(node):
            # No profile at all: the name is where to connect, and the core checks must run (see DEFAULT_REQUIRE).
            bare = Profile(host=node, require=list(DEFAULT_REQUIRE))
            return LoadedProfile(node=node, profile=bare, sources=(f"(no profile: {node} as an ssh destination)",))
        elif not path.is_file():
            known = ", ".join(known_nodes(directory)) or "none"
            raise ProfileError(f"no profile for node '{node}': {path} does not exist "
                               f"(known nodes: {known}; or give one with PROFILE=<file>, or use an ssh alias, "
                               f"a resolvable host name or localhost)")
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    sources: list[str] = []
    for file in [*_with_bases(Path(path), directory, (), []), *overlays]:
        data = _read_yaml(file)
        data.pop("extends", None)
        _merge(merged, data, origin, str(file), ())
        sources.append(str(file))
    try:
        profile = Profile.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError(_explain(exc, origin, str(path))) from None
    return LoadedProfile(node=node, profile=profile, sources=tuple(sources))


def _is_destination(node: str) -> bool:
    """localhost, an ssh alias with a HostName (`ssh -G`), or a name that resolves: a node without a profile."""
    if node in ("localhost", "local"):
        return True
    try:
        shown = subprocess.run(["ssh", "-G", "--", node], check=False, capture_output=True, text=True,
                               timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        shown = ""
    if any(line.split()[1:2] not in ([], [node]) for line in shown.splitlines() if line.startswith("hostname ")):
        return True
    try:
        socket.getaddrinfo(node, 22)
    except (OSError, UnicodeError):
        return False
    return True


MAX_PROFILE_FILES = 32  # a file and its bases; more is a mistake (or extends: fanning out exponentially)


def _with_bases(path: Path, directory: Path, chain: tuple[Path, ...], seen: list[Path]) -> list[Path]:
    path = path.resolve()
    if path in chain:
        raise ProfileError(f"{path}: extends itself through {' -> '.join(map(str, chain))}")
    seen.append(path)
    if len(seen) > MAX_PROFILE_FILES:
        raise ProfileError(f"{chain[0] if chain else path}: extends: more than {MAX_PROFILE_FILES} files "
                           f"with their bases")
    bases = _read_yaml(path).get("extends") or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ProfileError(f"{path}: extends: expected a file name or a list of file names")
    files: list[Path] = []
    for base in bases:
        candidates = [path.parent / base, directory / base]
        if Path(base).suffix not in (".yaml", ".yml"):
            raise ProfileError(f"{path}: extends: {base} is not a profile (expected a .yaml or .yml file)")
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ProfileError(f"{path}: extends: {base} not found (looked in {path.parent} and {directory})")
        files += _with_bases(found, directory, (*chain, path), seen)
    return [*files, path]


# A profile is a few kilobytes, a handful of levels deep, with a few hundred values. These bounds
# keep a hostile or broken file (an alias bomb, 20,000 nested '[') to milliseconds and megabytes.
MAX_PROFILE_BYTES = 64 * 1024
MAX_YAML_DEPTH = 32
MAX_YAML_VALUES = 20_000  # every scalar and collection, counted once per alias that repeats it


class _Refused(yaml.YAMLError):
    """What the profile reader refuses on purpose (the message says why)."""


class _ProfileLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses duplicate keys, nesting deeper than MAX_YAML_DEPTH and more
    than MAX_YAML_VALUES values as written (_expanded_size counts them with aliases expanded)."""

    def __init__(self, text: str, name: str):
        super().__init__(text)
        self.name = name  # marks (line, column) name the file
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # composing is recursive: refuse before Python's recursion limit does, with a line number
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"line {self.peek_event().start_mark.line + 1}: nested deeper than "
                               f"{MAX_YAML_DEPTH} levels")
            self._nodes += 1
            if self._nodes > MAX_YAML_VALUES:
                raise _Refused(f"more than {MAX_YAML_VALUES} values: not a profile")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key, line = (key_node.tag, key_node.value), key_node.start_mark.line + 1
                if key in first:  # PyYAML would keep the last one silently
                    raise _Refused(f"line {line}: key '{_shorten(key_node.value)}' appears twice "
                                   f"(lines {first[key]} and {line})")
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, depth: int, memo: dict[int, tuple[int, int]], active: set[int]) -> tuple[int, int]:
    """(values, height) of `node` with every alias expanded, each shared node measured once.

    Aliases make the document a graph: a few hundred bytes can stand for billions of values, which
    the merge, the validation and an error message would each walk."""
    if id(node) in memo:
        size, height = memo[id(node)]
    elif id(node) in active:
        raise _Refused(f"line {node.start_mark.line + 1}: an alias refers to the collection it is part of")
    else:
        if depth > MAX_YAML_DEPTH:
            raise _Refused(f"line {node.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels "
                           f"(through aliases)")
        active.add(id(node))
        children = [] if isinstance(node, yaml.ScalarNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        size, height = 1, 0
        for child in children:
            child_size, child_height = _expanded_size(child, depth + 1, memo, active)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_YAML_VALUES:
                break
        active.discard(id(node))
        memo[id(node)] = (size, height)
    if depth + height > MAX_YAML_DEPTH:
        raise _Refused(f"line {node.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH} levels (through aliases)")
    if size > MAX_YAML_VALUES:
        raise _Refused(f"more than {MAX_YAML_VALUES} values once anchors and aliases (&, *) are expanded")
    return size, height


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: larger than {MAX_PROFILE_BYTES // 1024} KiB: not a profile")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ProfileError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                           f"save the profile as UTF-8") from None
    try:
        loader = _ProfileLoader(text, str(path))
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML reads printable text only
        line = text[:exc.position].count("\n") + 1
        raise ProfileError(f"{path}: line {line}: character {exc.character:#06x} is not allowed in YAML") from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, 0, {}, set())
        data = None if node is None else loader.construct_document(node)
    except _Refused as exc:
        raise ProfileError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except (ValueError, OverflowError) as exc:  # e.g. an integer of more digits than Python converts
        raise ProfileError(f"{path}: not valid YAML: a value cannot be read: {_shorten(str(exc))}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping of keys (host:, paths:, checks: ...), "
                           f"got {type(data).__name__}")
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: where, what, and in what (no source snippet)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        text = f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: {exc.problem}"
        if exc.context:
            text += f" ({exc.context}" + (f" at line {exc.context_mark.line + 1})" if exc.context_mark else ")")
        return _shorten(text, 300)
    return _shorten(str(exc), 300)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _merge(into: dict, data: dict, origin: dict, source: str, prefix: tuple[str, ...]) -> None:
    for key, value in data.items():
        loc = (*prefix, str(key))
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, origin, source, loc)
        else:
            into[key] = value
            origin[loc] = source
            for sub in _leaf_keys(value, loc):
                origin[sub] = source


def _leaf_keys(value: Any, loc: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*loc, str(key))
            yield from _leaf_keys(sub, (*loc, str(key)))


MAX_ERROR_LINES = 20
_KEY_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # profile keys, drive serials and list indexes look like this


def _explain(exc: ValidationError, origin: dict, default_file: str) -> str:
    lines = []
    errors = exc.errors()
    for error in errors[:MAX_ERROR_LINES]:
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        file = next((origin[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in origin), default_file)
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            what = "unknown key" + (f" (expected one of: {', '.join(allowed)})" if allowed else "")
        elif error["type"] == "missing":
            what = "required key is missing"
        else:
            what = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            # our own messages say what they got; collections would only repeat the file
            if "got " not in what and (value is None or isinstance(value, (str, int, float, bool))):
                what += f" (got {_shorten(repr(value))})"
        if not all(_KEY_NAME.fullmatch(part) for part in loc):
            # a file that is no profile (`extends: /etc/shadow`) must not have its lines echoed as keys
            key = ".".join(part if _KEY_NAME.fullmatch(part) else "<not a key name>" for part in loc)
            what += "; is this file a profile?"
        lines.append(f"{file}: {_shorten(key, 120)}: {what}")
    if len(errors) > MAX_ERROR_LINES:
        lines.append(f"... and {len(errors) - MAX_ERROR_LINES} more")
    return "invalid profile:\n  " + "\n  ".join(lines)


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    """The keys the section at `loc` takes; list indexes and mapping keys walk into the item type."""
    model: Any = Profile
    for part in loc:
        model = _unwrap(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                return []
            model = field.annotation
        elif get_origin(model) in (list, tuple, set, frozenset, dict) and get_args(model):
            model = get_args(model)[-1]  # the item type (a mapping's value type)
        else:
            return []
    model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """X of Annotated[X, ...] and of X | None."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _unwrap(members[0]) if len(members) == 1 else annotation
    return annotation
