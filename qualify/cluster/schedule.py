"""The mesh in rounds: every pair of nodes once, no node in two tests of one round.

A round-robin tournament (the circle method): N−1 rounds for an even N, N for an odd N (one node
rests each round), instead of N·(N−1)/2 turns one at a time. On a switchless mesh every link is its
own cable, so the pairs of one round share no node, no cable and no CPU: they run at once.
"""

from __future__ import annotations

from collections.abc import Sequence

Pair = tuple[str, str]


def round_robin(nodes: Sequence[str]) -> list[list[Pair]]:
    """The rounds of a tournament of `nodes`; each pair is (lower index, higher index) in input order."""
    players: list[str | None] = list(dict.fromkeys(nodes))
    if len(players) < 2:
        return []
    if len(players) % 2:
        players.append(None)  # the node paired with None rests that round
    order = {name: i for i, name in enumerate(nodes)}
    n = len(players)
    rounds = []
    for _ in range(n - 1):
        pairs = []
        for i in range(n // 2):
            a, b = players[i], players[n - 1 - i]
            if a is not None and b is not None:
                pairs.append((a, b) if order[a] < order[b] else (b, a))
        rounds.append(sorted(pairs, key=lambda p: (order[p[0]], order[p[1]])))
        players = [players[0], players[-1], *players[1:-1]]  # keep the first, rotate the rest
    return rounds


def round_of(nodes: Sequence[str], a: str, b: str) -> int:
    """The round (0-based) in which the pair a–b is tested."""
    pair = frozenset((a, b))
    for number, pairs in enumerate(round_robin(nodes)):
        if any(frozenset(p) == pair for p in pairs):
            return number
    raise ValueError(f"{a} and {b} are not both in the mesh {list(nodes)}")
