"""Jinja2 templates of the report; autoescape is on, so every string from a node or a tool is escaped."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(loader=PackageLoader("qualify.report", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


_env.tests["mapping"] = _is_mapping


def render_template(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)
