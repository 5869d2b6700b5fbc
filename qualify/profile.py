"""Profiles: what a node is, how to reach it and what it must meet.

`profiles/<node>.yaml` is found by node name and may `extends:` shared bases (a file or a list,
relative to the file itself or to the profiles folder). Bases are merged first, the file on top
(mappings merge key by key, everything else is replaced). The merged result is validated by
pydantic; errors name the file that set the key, the key and what was expected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from qualify.durations import parse_duration
from qualify.errors import ProfileError

# ---------------------------------------------------------------- value types


def _duration(value: Any) -> float:
    return parse_duration(value)


def _hex_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a revision like 0x435")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*(0x)?[0-9a-fA-F]+\s*", value):
        return int(value, 16)
    raise ValueError(f"expected a hexadecimal revision like 0x435, got {value!r}")


Seconds = Annotated[float, BeforeValidator(_duration)]
Revision = Annotated[int, BeforeValidator(_hex_int)]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError(f"expected an absolute path, got {value!r}")
    return value


# ---------------------------------------------------------------- sections


class SshSettings(_Strict):
    config_file: str | None = Field(None, description="ssh_config file passed to ssh -F")
    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    identity_file: str | None = None
    known_hosts_file: str | None = None
    strict_host_key_checking: bool = True
    connect_timeout: Seconds = Field(10.0, gt=0)

    _abs = field_validator("config_file", "identity_file", "known_hosts_file")(_absolute)


class Paths(_Strict):
    """Where the checks read the node's kernel interfaces; a prepared tree for tests and the lab."""

    sysfs: str = "/sys"
    procfs: str = "/proc"
    firmware: str = "/lib/firmware"
    kernel_log: str | None = Field(None, description="file to read the kernel log from instead of journalctl/dmesg")

    _abs = field_validator("sysfs", "procfs", "firmware", "kernel_log")(_absolute)


class MicrocodeSettings(_Strict):
    min_revision: Revision | None = Field(None, description="lowest acceptable running revision")
    require_early_load: bool = False
    compare_firmware_files: bool = True
    engineering_sample: Literal["warn", "fail"] = "warn"


class Checks(_Strict):
    microcode: MicrocodeSettings = MicrocodeSettings()


class Profile(_Strict):
    host: str = Field(description="localhost/local, or an SSH destination (~/.ssh/config aliases work)")
    description: str = ""
    labels: dict[str, str] = {}
    duration: Seconds | None = Field(None, description="overrides the length of long checks")
    command_timeout: Seconds = Field(120.0, gt=0)
    ssh: SshSettings = SshSettings()
    paths: Paths = Paths()
    checks: Checks = Checks()

    @field_validator("host")
    @classmethod
    def _host_is_a_destination(cls, value: str) -> str:
        # A leading '-' would be read by ssh as an option; whitespace is never part of a host.
        if not value or value.startswith("-") or re.search(r"\s", value):
            raise ValueError(f"expected a host name, address or ssh alias, got {value!r}")
        return value

    @property
    def is_local(self) -> bool:
        return self.host in ("localhost", "local")


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


def load_profile(node: str, path: Path | None = None, overlays: list[Path] = (),
                 directory: Path | None = None) -> LoadedProfile:
    """Load `path` (default profiles/<node>.yaml) with its bases, then `overlays` on top."""
    directory = directory or profiles_dir()
    if path is None:
        path = directory / f"{node}.yaml"
        if not path.is_file():
            known = ", ".join(known_nodes(directory)) or "none"
            raise ProfileError(f"no profile for node '{node}': {path} does not exist "
                               f"(known nodes: {known}; or give one with PROFILE=<file>)")
    merged: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    sources: list[str] = []
    for file in [*_with_bases(Path(path), directory, ()), *overlays]:
        data = _read_yaml(file)
        data.pop("extends", None)
        _merge(merged, data, origin, str(file), ())
        sources.append(str(file))
    try:
        profile = Profile.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError(_explain(exc, origin, str(path))) from None
    return LoadedProfile(node=node, profile=profile, sources=tuple(sources))


def _with_bases(path: Path, directory: Path, chain: tuple[Path, ...]) -> list[Path]:
    path = path.resolve()
    if path in chain:
        raise ProfileError(f"{path}: extends itself through {' -> '.join(map(str, chain))}")
    bases = _read_yaml(path).get("extends") or []
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ProfileError(f"{path}: extends: expected a file name or a list of file names")
    files: list[Path] = []
    for base in bases:
        candidates = [path.parent / base, directory / base]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ProfileError(f"{path}: extends: {base} not found (looked in {path.parent} and {directory})")
        files += _with_bases(found, directory, (*chain, path))
    return [*files, path]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: expected a mapping of keys (host:, paths:, checks: ...), "
                           f"got {type(data).__name__}")
    return data


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


def _leaf_keys(value: Any, loc: tuple[str, ...]):
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*loc, str(key))
            yield from _leaf_keys(sub, (*loc, str(key)))


def _explain(exc: ValidationError, origin: dict, default_file: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(top level)"
        file = next((origin[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in origin), default_file)
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            what = f"unknown key (expected one of: {', '.join(allowed)})"
        elif error["type"] == "missing":
            what = "required key is missing"
        else:
            message = error["msg"].removeprefix("Value error, ")
            what = f"{message} (got {error.get('input')!r})"
        lines.append(f"{file}: {key}: {what}")
    return "invalid profile:\n  " + "\n  ".join(lines)


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = Profile
    for part in loc:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []
