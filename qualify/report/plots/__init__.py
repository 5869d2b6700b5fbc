"""Charts of a check, drawn from the run's stored data only (so any run can be plotted again).

One module per check, named like it: `qualify/report/plots/<check>.py` defines
`charts(run_dir: Path, check: dict) -> list[Chart | Table]` (qualify.report.charts); the report draws
the charts with uPlot and the tables as HTML. A check without a module has no plots.
"""
