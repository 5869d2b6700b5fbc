"""What a node is and has: how to reach it, where its kernel interfaces are, its drives, links and
PCIe devices, and the value types every part of the profile uses (durations, rates, revisions).

Why apart from the schema: `qualify profile init` (qualify/discovery) writes these from the live
node, while the limits in qualify/profile/schema.py are what users tune.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from qualify.durations import parse_duration

# ---------------------------------------------------------------- value types


def _duration(value: Any) -> float:
    # zero passes here (a wait may be skipped); each field's own bound (gt=0) refuses it where it means nothing
    return parse_duration(value, allow_zero=True)


def _hex_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a revision like 0x435")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*(0x)?[0-9a-fA-F]+\s*", value):
        return int(value, 16)
    raise ValueError(f"expected a hexadecimal revision like 0x435, got {value!r}")


_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kKMGT]?)(?:bit(?:/s)?|bps)?\s*")
_RATE_FACTORS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def _rate(value: Any) -> float:
    """Bits per second from 10G, 9.4Gbit/s, 940M or a plain number (decimal units, as iperf3 and ethtool)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf:
        return float(value)
    if isinstance(value, str) and len(value) < 40 and (m := _RATE.fullmatch(value)) and float(m[1]) > 0:
        return float(m[1]) * _RATE_FACTORS[m[2]]
    raise ValueError(f"expected a rate like 10G, 9.4Gbit/s or 940M, got {value!r}")


Seconds = Annotated[float, BeforeValidator(_duration)]
Revision = Annotated[int, BeforeValidator(_hex_int)]
BitsPerSecond = Annotated[float, BeforeValidator(_rate)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf/.nan are never a limit


def regular_expression(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression ({exc})") from None
    return value


def absolute_path(value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise ValueError(f"expected an absolute path, got {value!r}")
    return value


# ---------------------------------------------------------------- what the node is and has


class SshSettings(Strict):
    config_file: str | None = Field(None, description="ssh_config file passed to ssh -F")
    user: str | None = Field(None, description="login name (ssh -l); default: ssh's own (its config, then yours)")
    port: int | None = Field(None, ge=1, le=65535, description="ssh port (ssh -p); default: ssh's own, 22")
    identity_file: str | None = Field(None, description="private key file (ssh -i)")
    known_hosts_file: str | None = Field(None, description="known_hosts file instead of ~/.ssh/known_hosts")
    strict_host_key_checking: bool = Field(True, description="refuse a host whose key is unknown or changed")
    connect_timeout: Seconds = Field(10.0, gt=0, description="ssh ConnectTimeout of every connection")

    _abs = field_validator("config_file", "identity_file", "known_hosts_file")(absolute_path)


class Paths(Strict):
    """Where the checks read the node's kernel interfaces; a prepared tree for tests and the lab."""

    sysfs: str = Field("/sys", description="absolute path of the node's sysfs")
    procfs: str = Field("/proc", description="absolute path of the node's procfs")
    firmware: str = Field("/lib/firmware", description="the node's microcode files (intel-ucode/, amd-ucode/)")
    kernel_log: str | None = Field(None, description="file to read the kernel log from instead of journalctl/dmesg")

    _abs = field_validator("sysfs", "procfs", "firmware", "kernel_log")(absolute_path)


class NetworkLink(Strict):
    """One link of the node: tested with iperf3 against the peer node's end of it."""

    peer: str = Field(description="node name of the other end; its profile says how to reach it")
    interface: str = Field(description="this node's interface on the link, e.g. enp6s0f0")
    peer_address: str = Field(description="the peer's address on this link (cluster/Ceph network)")
    expected_rate: BitsPerSecond | None = Field(None, description="default: the negotiated speed (ethtool)")


class DriveSpec(Strict):
    """Spec-sheet figures of a drive model; measured results must reach storage.min_share_of_spec of them."""

    seq_read_mb_s: float | None = Field(None, gt=0, description="1 MiB sequential read, MB/s")
    seq_write_mb_s: float | None = Field(None, gt=0, description="1 MiB sequential write, MB/s")
    rand_read_iops: float | None = Field(None, gt=0, description="4 KiB random read at depth")
    rand_write_iops: float | None = Field(None, gt=0, description="4 KiB random write at depth")
    pcie_gts: float | None = Field(None, gt=0, description="PCIe link speed the drive is built for, GT/s")
    pcie_width: int | None = Field(None, ge=1, le=32, description="PCIe lanes the drive is built for")


class StorageDrive(Strict):
    """A drive of the node, named by serial or WWN (never by /dev name: those change between boots)."""

    serial: str | None = Field(None, min_length=1)
    wwn: str | None = Field(None, min_length=1)
    allow_destroy: bool = Field(False, description="write tests may destroy this drive's data")
    wipe: bool = Field(False, description="write even over a partition table or filesystem/RAID signature")
    spec: DriveSpec = DriveSpec()
    seller_power_on_hours: int | None = Field(None, ge=0, description="what the seller claimed")
    rated_endurance_tbw: float | None = Field(None, gt=0, description="rated TB written (spec sheet)")

    @model_validator(mode="after")
    def _one_identity(self) -> StorageDrive:
        if (self.serial is None) == (self.wwn is None):
            raise ValueError("expected exactly one of serial: or wwn:")
        return self

    @property
    def identity(self) -> str:
        return f"serial {self.serial}" if self.serial else f"WWN {self.wwn}"


class PcieExpectation(Strict):
    """What one PCIe function must reach, by its address or its vendor:device ids."""

    slot: str | None = Field(None, pattern=r"^[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$",
                             description="PCI address, e.g. 0000:03:00.0")
    ids: str | None = Field(None, pattern=r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$",
                            description="vendor:device, e.g. 8086:10fb")
    min_speed_gts: float | None = Field(None, gt=0, description="lowest acceptable link speed, GT/s")
    min_width: int | None = Field(None, ge=1, le=32, description="fewest acceptable lanes")

    @model_validator(mode="after")
    def _names_a_device(self) -> PcieExpectation:
        if (self.slot is None) == (self.ids is None):
            raise ValueError("give either slot or ids")
        return self
