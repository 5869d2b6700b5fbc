"""The report: renders a run from its stored records only, so any run — finished, killed or still
going — can be rendered again (`qualify report <run dir>`). It never decides anything: the
verdict comes from qualify.verdict.
"""

from qualify.report.render import render_index, render_run

__all__ = ["render_index", "render_run"]
