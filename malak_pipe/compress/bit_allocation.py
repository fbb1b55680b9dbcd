"""Which layers go to 4 bits: a 0/1 choice per layer under a saving the budget requires.

Each candidate layer saves ``amount`` (bytes, or parameters for an average bit-width budget)
when put at 4 bits, for a predicted accuracy cost ``cost`` (additive over layers). Given the
``need``ed saving:

* :func:`knapsack` minimizes the total cost among the sets that save at least ``need``: by
  enumerating every set for up to 20 layers, else by dynamic programming over the amount the
  layers kept at 8 bits may hold (amounts divided by their gcd, and rounded up in coarser units
  when that table would pass 4 million cells: still feasible, then ``exact`` is False);
* :func:`greedy` adds layers by increasing cost per unit saved until the need is met;
* :func:`random_choice` draws uniformly among the sets that meet the need (the control that
  the sensitivity ordering must beat).

Equal costs prefer fewer 4-bit layers. No torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from malak_pipe.errors import ConfigError

ENUMERATE_UP_TO = 20
MAX_DP_CELLS = 4_000_000
_FEWER = 1e-9  # per 4-bit layer: among equal costs, the smaller set


@dataclass(frozen=True)
class Candidate:
    """A layer that may go to 4 bits: what it saves and what it is predicted to cost."""

    name: str
    amount: int
    cost: float


@dataclass(frozen=True)
class Selection:
    """The layers put at 4 bits, what they save and their predicted cost."""

    names: tuple[str, ...]
    amount: int
    cost: float
    exact: bool = True


def _selection(candidates: list[Candidate], chosen: list[int], exact: bool = True) -> Selection:
    picked = [candidates[i] for i in sorted(chosen)]
    return Selection(
        tuple(c.name for c in picked), sum(c.amount for c in picked), sum(c.cost for c in picked), exact
    )


def check_feasible(candidates: list[Candidate], need: int) -> None:
    """ConfigError when even every layer at 4 bits saves less than ``need``."""
    total = sum(c.amount for c in candidates)
    if need > total:
        raise ConfigError(
            f"the budget needs {need} saved, every layer at 4 bits saves {total}",
            path="budget",
            hint="raise the budget (or prune / narrow the model first)",
        )


def _all_sets(candidates: list[Candidate]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every set as a bit mask (layer i = bit i), with its amount and cost (fewer layers first on ties)."""
    masks = np.arange(2 ** len(candidates), dtype=np.int64)
    amounts = np.zeros(len(masks), dtype=np.int64)
    costs = np.zeros(len(masks))
    for i, candidate in enumerate(candidates):
        bit = (masks >> i) & 1
        amounts += bit * candidate.amount
        costs += bit * (candidate.cost + _FEWER)
    return masks, amounts, costs


def _members(mask: int, n: int) -> list[int]:
    return [i for i in range(n) if (mask >> i) & 1]


def _enumerate(candidates: list[Candidate], need: int) -> Selection:
    masks, amounts, costs = _all_sets(candidates)
    costs[amounts < need] = np.inf
    return _selection(candidates, _members(int(masks[int(np.argmin(costs))]), len(candidates)))


def _dynamic(candidates: list[Candidate], need: int) -> Selection:
    """Max cost kept at 8 bits with kept amounts <= total - need (0/1 knapsack over the kept set)."""
    amounts = [c.amount for c in candidates]
    unit = math.gcd(*amounts) or 1
    capacity = (sum(amounts) - need) // unit
    exact = True
    if capacity * len(candidates) > MAX_DP_CELLS:
        unit *= math.ceil(capacity * len(candidates) / MAX_DP_CELLS)
        capacity, exact = (sum(amounts) - need) // unit, False
    weights = [-(-a // unit) for a in amounts]  # rounded up: what fits stays feasible
    best = np.zeros(capacity + 1)
    took = np.zeros((len(candidates), capacity + 1), dtype=bool)
    for i, candidate in enumerate(candidates):
        value = candidate.cost + _FEWER
        if weights[i] > capacity:
            continue
        shifted = np.full(capacity + 1, -np.inf)
        shifted[weights[i] :] = best[: capacity + 1 - weights[i]] + value
        took[i] = shifted > best
        best = np.maximum(best, shifted)
    kept, room = set(), int(np.argmax(best))
    for i in range(len(candidates) - 1, -1, -1):
        if took[i, room]:
            kept.add(i)
            room -= weights[i]
    return _selection(candidates, [i for i in range(len(candidates)) if i not in kept], exact)


def knapsack(candidates: list[Candidate], need: int) -> Selection:
    """The set of least total cost that saves at least ``need``."""
    check_feasible(candidates, need)
    if need <= 0:
        return _selection(candidates, [])
    if len(candidates) <= ENUMERATE_UP_TO:
        return _enumerate(candidates, need)
    return _dynamic(candidates, need)


def greedy(candidates: list[Candidate], need: int) -> Selection:
    """Layers by increasing cost per unit saved until the saving reaches ``need``."""
    check_feasible(candidates, need)
    order = sorted(range(len(candidates)), key=lambda i: (candidates[i].cost / max(candidates[i].amount, 1), i))
    chosen, saved = [], 0
    for i in order:
        if saved >= need:
            break
        chosen.append(i)
        saved += candidates[i].amount
    return _selection(candidates, chosen)


def random_choice(candidates: list[Candidate], need: int, seed: int) -> Selection:
    """A set drawn uniformly (with ``seed``) among those that save at least ``need``.

    Every feasible set is listed for up to 20 layers; beyond, sets of independent fair coin
    flips are drawn until one is feasible.
    """
    check_feasible(candidates, need)
    rng = np.random.default_rng(seed)
    n = len(candidates)
    if n <= ENUMERATE_UP_TO:
        masks, amounts, _ = _all_sets(candidates)
        feasible = masks[amounts >= need]
        return _selection(candidates, _members(int(feasible[int(rng.integers(len(feasible)))]), n))
    amounts = np.array([c.amount for c in candidates], dtype=np.int64)
    flips = rng.integers(0, 2, size=n)
    while flips @ amounts < need:
        flips = rng.integers(0, 2, size=n)
    return _selection(candidates, [i for i in range(n) if flips[i]])


def choose(solver: str, candidates: list[Candidate], need: int, seed: int = 0) -> Selection:
    """The selection of ``solver`` ("knapsack", "greedy" or "random")."""
    if solver == "knapsack":
        return knapsack(candidates, need)
    if solver == "greedy":
        return greedy(candidates, need)
    return random_choice(candidates, need, seed)
