"""lm-sensors `sensors -j`: chips, their features (as sensors labels them) and the raw sub-feature values.

    {"coretemp-isa-0000": {"Adapter": "ISA adapter",
                           "Package id 0": {"temp1_input": 27.0, "temp1_max": 80.0, ...}, ...}, ...}

Values are in sensors' units (°C, RPM, V, W); `sysfs_value` turns one back into the kernel's hwmon
unit (m°C, mV, µW ...), which is how the tests and the lab build hwmon trees from real dumps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from qualify.errors import ParseError

# hwmon sysfs units per sub-feature kind (Documentation/hwmon/sysfs-interface.rst).
_SYSFS_SCALE = {"temp": 1000, "in": 1000, "curr": 1000, "power": 1_000_000, "energy": 1_000_000,
                "humidity": 1000, "fan": 1, "pwm": 1, "intrusion": 1}
_SUBFEATURE = re.compile(r"^(?P<kind>[a-z]+)(?P<index>\d+)_(?P<item>\w+)$")


@dataclass(frozen=True)
class SensorsFeature:
    label: str                       # "Package id 0", "Core 4", "Composite", "temp1" (no label)
    values: Mapping[str, float]      # sub-feature file name -> value in sensors' units


@dataclass(frozen=True)
class SensorsChip:
    name: str                        # coretemp-isa-0000
    adapter: str
    features: tuple[SensorsFeature, ...]

    @property
    def driver(self) -> str:
        """The hwmon `name` the kernel shows: coretemp, nvme, acpitz, k10temp, nct6798."""
        return self.name.rsplit("-", 2)[0]


def parse_sensors_json(text: str, source: str = "sensors -j") -> list[SensorsChip]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"not JSON ({exc}); expected the output of `sensors -j`") from None
    if not isinstance(data, dict):
        raise ParseError(source, "expected a JSON object of chips (the output of `sensors -j`)")
    chips = []
    for name, body in data.items():
        if not isinstance(body, dict):
            raise ParseError(source, f"chip {name!r}: expected an object of features")
        features = []
        for label, values in body.items():
            if label == "Adapter" or not isinstance(values, dict):
                continue
            bad = [k for k, v in values.items() if not isinstance(v, (int, float))]
            if bad:
                raise ParseError(source, f"chip {name!r} feature {label!r}: {bad[0]} is not a number")
            features.append(SensorsFeature(label=label, values={k: float(v) for k, v in values.items()}))
        chips.append(SensorsChip(name=name, adapter=str(body.get("Adapter", "")), features=tuple(features)))
    return chips


def sysfs_value(subfeature: str, value: float) -> int:
    """The integer a hwmon sysfs file holds for `value` (e.g. temp1_input 27.5 -> 27500)."""
    match = _SUBFEATURE.match(subfeature)
    scale = _SYSFS_SCALE.get(match["kind"], 1) if match and match["item"] not in ("alarm", "beep", "type",
                                                                                 "pulses") else 1
    return round(value * scale)


def feature_prefix(feature: SensorsFeature) -> str | None:
    """temp2 for a feature whose values are temp2_input, temp2_max ... (None for intrusion/beep)."""
    for key in feature.values:
        match = _SUBFEATURE.match(key)
        if match:
            return f"{match['kind']}{match['index']}"
    return None
