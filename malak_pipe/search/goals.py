"""Objectives and constraints of a search, read from a trial's results.json.

Both name a metric as ``node.metric`` (``sim_run.top1``, ``firmware_build.flash_bytes``). A
trial is *feasible* when every constraint holds and no node reports that a budget was
exceeded; it is *infeasible* when a budget check failed (status ``infeasible``) or a
constraint is violated: recorded, never an error. A trial whose nodes failed otherwise is an
error of the pipeline and reported as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from malak_pipe.errors import ConfigError


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    direction: Literal["maximize", "minimize"]

    @model_validator(mode="after")
    def _dotted(self) -> Objective:
        _split(self.metric)
        return self


class Constraint(BaseModel):
    """``metric`` must stay within ``min``..``max`` (either may be omitted)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    metric: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Constraint:
        _split(self.metric)
        if self.max is None and self.min is None:
            raise ValueError(f"constraint on {self.metric} has neither max nor min")
        return self

    def violation(self, value: float | None) -> float:
        """How far ``value`` is outside the bounds, relative to the bound (0 = satisfied)."""
        if value is None or not math.isfinite(value):
            return 1.0
        over = (value - self.max) / max(abs(self.max), 1e-12) if self.max is not None else 0.0
        under = (self.min - value) / max(abs(self.min), 1e-12) if self.min is not None else 0.0
        return max(over, under, 0.0)


def _split(metric: str) -> tuple[str, str]:
    node, dot, name = metric.partition(".")
    if not dot or not node or not name:
        raise ValueError(f"'{metric}' is not <node>.<metric>")
    return node, name


def metric_value(nodes: dict[str, Any], metric: str) -> float | None:
    node, name = _split(metric)
    value = nodes.get(node, {}).get("metrics", {}).get(name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Outcome:
    """What a trial's results mean to the study."""

    state: Literal["complete", "infeasible", "pruned", "error"]
    values: list[float] = field(default_factory=list)
    violations: list[float] = field(default_factory=list)
    reason: str = ""

    @property
    def feasible(self) -> bool:
        return self.state == "complete" and all(v == 0.0 for v in self.violations)


def judge(nodes: dict[str, Any], objectives: list[Objective], constraints: list[Constraint]) -> Outcome:
    """The outcome of a finished trial from its results.json nodes."""
    statuses = {name: res.get("status") for name, res in nodes.items()}
    for state in ("pruned", "infeasible"):
        hit = [n for n, s in statuses.items() if s == state]
        if hit:
            return Outcome(state, violations=[1.0] * len(constraints), reason=_reason(nodes, hit[0]))
    failed = [n for n, s in statuses.items() if s == "failed"]
    if failed:
        return Outcome("error", reason=_reason(nodes, failed[0]))
    values = [metric_value(nodes, o.metric) for o in objectives]
    missing = [o.metric for o, v in zip(objectives, values, strict=True) if v is None]
    if missing:
        return Outcome("error", reason=f"objective metric(s) missing from the results: {missing}")
    violations = [c.violation(metric_value(nodes, c.metric)) for c in constraints]
    state = "complete" if all(v == 0.0 for v in violations) else "infeasible"
    return Outcome(state, values=[float(v) for v in values if v is not None], violations=violations,
                   reason="" if state == "complete" else _violated(constraints, violations, nodes))


def _reason(nodes: dict[str, Any], node: str) -> str:
    res = nodes[node]
    return f"{node}: {res.get('error') or res.get('reason') or res.get('status')}"


def _violated(constraints: list[Constraint], violations: list[float], nodes: dict[str, Any]) -> str:
    return "; ".join(
        f"{c.metric} = {metric_value(nodes, c.metric)} outside [{c.min}, {c.max}]"
        for c, v in zip(constraints, violations, strict=True) if v > 0
    )


def parse_goals(objectives: list[Any], constraints: list[Any]) -> tuple[list[Objective], list[Constraint]]:
    try:
        objs = [Objective.model_validate(o) for o in objectives]
        cons = [Constraint.model_validate(c) for c in constraints]
    except ValueError as exc:
        raise ConfigError(f"search goals: {exc}", path="hydra.sweeper.objectives") from None
    if not objs:
        raise ConfigError("a search needs at least one objective", path="hydra.sweeper.objectives")
    return objs, cons
