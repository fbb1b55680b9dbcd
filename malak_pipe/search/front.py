"""The Pareto front of a search, its pick, and the hypervolume of a front.

Trials are plain records here (``TrialRecord``), read back from the study, so the front can
be computed for any finished or resumed study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from malak_pipe.search.goals import Objective


@dataclass
class TrialRecord:
    number: int
    state: str  # complete | infeasible | pruned | error
    params: dict[str, Any]
    values: list[float]
    feasible: bool
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    run_dir: str = ""
    overrides: list[str] = field(default_factory=list)


def _as_minimized(values: Sequence[float], objectives: list[Objective]) -> list[float]:
    return [-v if o.direction == "maximize" else v for v, o in zip(values, objectives, strict=True)]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse in every (minimized) objective and better in one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_front(trials: list[TrialRecord], objectives: list[Objective]) -> list[TrialRecord]:
    """The feasible trials no other feasible trial dominates, best first objective first."""
    feasible = [t for t in trials if t.feasible]
    points = {t.number: _as_minimized(t.values, objectives) for t in feasible}
    front = [t for t in feasible if not any(dominates(points[o.number], points[t.number]) for o in feasible)]
    return sorted(front, key=lambda t: points[t.number])


def pick(front: list[TrialRecord], objectives: list[Objective], prefer: str | None = None) -> TrialRecord | None:
    """The most accurate feasible trial: the best value of ``prefer`` (an objective's metric;
    default the first objective), ties broken by the other objectives in order."""
    if not front:
        return None
    order = [i for i, o in enumerate(objectives) if o.metric == prefer] if prefer else []
    order += [i for i in range(len(objectives)) if i not in order]
    def key(t: TrialRecord) -> list[float]:
        minimized = _as_minimized(t.values, objectives)
        return [minimized[i] for i in order]
    return min(front, key=key)


def hypervolume(points: list[list[float]], reference: list[float]) -> float:
    """The volume dominated by ``points`` (minimized objectives) up to ``reference``: exact,
    by slicing along the last objective (a few hundred points in 2-3 objectives is instant)."""
    inside = [p for p in points if all(x < r for x, r in zip(p, reference, strict=True))]
    if not inside:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in inside)
    inside.sort(key=lambda p: p[-1])
    volume = 0.0
    for index, point in enumerate(inside):
        upper = inside[index + 1][-1] if index + 1 < len(inside) else reference[-1]
        if upper > point[-1]:
            slab = hypervolume([p[:-1] for p in inside[: index + 1]], reference[:-1])
            volume += slab * (upper - point[-1])
    return volume


def normalized_hypervolume(
    trials: list[TrialRecord], objectives: list[Objective], bounds: list[tuple[float, float]]
) -> float:
    """Hypervolume of the feasible trials with each objective scaled to [0, 1] by ``bounds``
    (worst end = the reference point), so searches with different samplers compare."""
    points = []
    for trial in trials:
        if not trial.feasible:
            continue
        scaled = []
        for value, objective, (low, high) in zip(trial.values, objectives, bounds, strict=True):
            x = (value - low) / (high - low) if high > low else 0.0
            scaled.append(1.0 - x if objective.direction == "maximize" else x)
        points.append(scaled)
    return hypervolume(points, [1.0] * len(objectives))
