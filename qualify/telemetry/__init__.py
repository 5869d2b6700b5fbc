"""Live telemetry of a node during long checks (thermal soak, freeze soak).

    from qualify.telemetry import start_telemetry
    stream = start_telemetry(node, run_store, profile.telemetry)   # sampler runs on the node
    ...
    summary = stream.stop()                                         # TelemetrySummary

Samples land in samples/telemetry.jsonl of the run as they arrive; `load_telemetry(run_dir)` reads
them back as time series (see series.py for the series names).
"""

from qualify.telemetry.series import Telemetry, load_telemetry, telemetry_from_records
from qualify.telemetry.stream import Gap, TelemetryStream, TelemetrySummary, start_telemetry

__all__ = ["Gap", "Telemetry", "TelemetryStream", "TelemetrySummary", "load_telemetry", "start_telemetry",
           "telemetry_from_records"]
