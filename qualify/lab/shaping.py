"""Shaping the lab's veth links, so a lab link behaves like a real one: a rate cap and random loss.

Shaping is per direction: pve2 -> pve3 can be faulty while pve3 -> pve2 is healthy (a dirty fibre
strand, a marginal transceiver on one side). The rate is a tc tbf qdisc on the sender's device;
loss is an nftables rule on the receiver's device (netdev ingress hook) dropping a random share of
what arrives. netem is the usual tool for loss, but kernels built without CONFIG_NET_SCH_NETEM
(like this project's CI VM) lack it; and a drop on the sender's side is reported back to TCP as
local congestion instead of being lost on the wire, so it would not show as retransmits.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qualify.errors import LabError
from qualify.lab._cmd import require_tools, run

if TYPE_CHECKING:  # lab.py writes the overlay, which states LAB_LINK_RATE from here
    from qualify.lab.lab import LabConfig

# What a lab link is expected to carry (the lab overlay states it); tests shape healthy links to it.
LAB_LINK_RATE = 500e6  # bits/s; modest, so a shaped lab link keeps its rate on a busy 2-core CI machine
_BURST_S = 0.002  # a tbf bucket of 2 ms at the rate
_MIN_BURST_BYTES = 128 * 1024  # above one GSO super-packet (64 KiB), so veth GSO does not stall the bucket
# A short queue, as a NIC's rings are: a deep one (bufferbloat) would put tens of ms on every
# ping while the link is loaded, which real 10G links do not.
_QUEUE_MS = 1
_LOSS_SCALE = 100_000  # loss resolution: 0.001 %
_NOTHING_TO_DELETE = ("No such file or directory", "Cannot delete qdisc with handle of zero")


@dataclass(frozen=True)
class Shape:
    rate_bits: float | None = None  # tbf cap, bits per second
    loss_percent: float | None = None  # random drop of packets leaving the device

    def __post_init__(self) -> None:
        if self.rate_bits is None and self.loss_percent is None:
            raise LabError("a link shape needs a rate or a loss")
        if self.loss_percent is not None and not 0 < self.loss_percent <= 100:
            raise LabError(f"loss {self.loss_percent} %: expected more than 0 and at most 100")


def shape_direction(cfg: LabConfig, sender: str, receiver: str, shape: Shape) -> None:
    """Shape what lab node `sender` sends to `receiver` over their mesh link (replaces earlier shaping)."""
    clear_direction(cfg, sender, receiver)
    if shape.rate_bits is not None:
        require_tools(["tc"])
        burst = max(int(shape.rate_bits / 8 * _BURST_S), _MIN_BURST_BYTES)
        run(["tc", "-n", cfg.netns(sender), "qdisc", "add", "dev", f"to-{receiver}", "root", "handle", "10:",
             "tbf", "rate", f"{int(shape.rate_bits)}bit", "burst", str(burst), "latency", f"{_QUEUE_MS}ms"])
    if shape.loss_percent is not None:
        require_tools(["nft"])
        below = round(shape.loss_percent / 100 * _LOSS_SCALE)
        script = (f"table netdev {_loss_table(sender)} {{\n chain ingress {{\n"
                  f'  type filter hook ingress device "to-{sender}" priority 0; policy accept;\n'
                  f"  numgen random mod {_LOSS_SCALE} < {below} drop\n }}\n}}\n")
        run(["ip", "netns", "exec", cfg.netns(receiver), "nft", "-f", "-"], input=script)


def clear_direction(cfg: LabConfig, sender: str, receiver: str) -> None:
    """No shaping from `sender` to `receiver` any more; harmless when there was none."""
    qdisc = run(["tc", "-n", cfg.netns(sender), "qdisc", "del", "dev", f"to-{receiver}", "root"], check=False)
    if qdisc.returncode != 0 and not any(text in qdisc.stderr for text in _NOTHING_TO_DELETE):
        raise LabError(f"cannot remove the tc shaping of {sender} -> {receiver}: {qdisc.stderr.strip()}")
    in_receiver = ["ip", "netns", "exec", cfg.netns(receiver), "nft"]
    listed = run([*in_receiver, "list", "tables"], check=False)
    if f"table netdev {_loss_table(sender)}" in listed.stdout.splitlines():
        run([*in_receiver, "delete", "table", "netdev", _loss_table(sender)])


def _loss_table(sender: str) -> str:
    return "qualify_loss_from_" + "".join(c if c.isalnum() else "_" for c in sender)


@contextlib.contextmanager
def shaped(cfg: LabConfig, shapes: dict[tuple[str, str], Shape]) -> Iterator[None]:
    """{(sender, receiver): shape} for the duration of the block; always cleared afterwards."""
    done: list[tuple[str, str]] = []
    try:
        for (sender, receiver), shape in shapes.items():
            done.append((sender, receiver))
            shape_direction(cfg, sender, receiver, shape)
        yield
    finally:
        for sender, receiver in done:
            clear_direction(cfg, sender, receiver)
