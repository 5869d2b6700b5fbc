"""Jinja2 templates of the report; autoescape is on, so every string from a node or a tool is escaped."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(loader=PackageLoader("qualify.report", "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict)


_env.tests["mapping"] = _is_mapping
# Every page has the same look: the stylesheet is inlined (a report is one file that opens offline).
_env.globals["css"] = files("qualify.report").joinpath("static", "qualify.css").read_text()


def render_template(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)
