"""Live telemetry of a node during long checks (thermal soak, freeze soak).

    from qualify.telemetry import start_telemetry
    stream = start_telemetry(node, run_store, profile.telemetry, stream_for("thermal"))  # sampler on the node
    ...
    summary = stream.stop()                                         # TelemetrySummary

Samples land in samples/telemetry-<check>.jsonl of the run as they arrive (each check its own window);
`load_check_telemetry(run_dir, "thermal")` reads them back as time series (see series.py for the names).
"""

from qualify.telemetry.series import Telemetry, load_check_telemetry, load_telemetry, telemetry_from_records
from qualify.telemetry.stream import Gap, TelemetryStream, TelemetrySummary, start_telemetry, stream_for

__all__ = ["Gap", "Telemetry", "TelemetryStream", "TelemetrySummary", "load_check_telemetry", "load_telemetry",
           "start_telemetry", "stream_for", "telemetry_from_records"]
