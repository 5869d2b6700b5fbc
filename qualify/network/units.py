"""Rates as people read them (decimal units, as iperf3 and ethtool print them)."""

from __future__ import annotations


def format_rate(bits_per_second: float) -> str:
    if bits_per_second >= 1e9:
        return f"{bits_per_second / 1e9:.2f} Gbit/s"
    if bits_per_second >= 1e6:
        return f"{bits_per_second / 1e6:.0f} Mbit/s"
    return f"{bits_per_second / 1e3:.0f} kbit/s"
