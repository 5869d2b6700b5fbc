"""Plots of a check, drawn from the run's stored data only (so any run can be plotted again).

One module per check, named like it: `qualify/report/plots/<check>.py` defines
`figures(run_dir: Path, check: dict) -> list[matplotlib.figure.Figure]` (each with a suptitle).
The report embeds them as PNG; a check without a module has no plots.
"""

from __future__ import annotations

import base64
import importlib
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: reports are rendered on servers and in CI

from matplotlib.figure import Figure  # noqa: E402

DPI = 96


def check_images(run_dir: Path, check: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, base64 PNG) of every figure of a check."""
    base = check["name"].split("[", 1)[0]  # parametrized checks share their module's plots
    try:
        module = importlib.import_module(f"{__name__}.{base}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{base}":
            return []
        raise
    return [(fig.get_suptitle() or "plot", png_base64(fig)) for fig in module.figures(run_dir, check)]


def png_base64(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
