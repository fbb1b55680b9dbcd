"""Aggregation of run results across seeds: mean, std, n and a Student-t 95% interval.

Jobs are grouped by every override except the seed, so ``-m seed=0,1,2 stage.x=a,b`` gives
two groups of three. A metric missing from some job of a group is reported, not fatal.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from malak_pipe.engine.results import RESULTS_FILE
from malak_pipe.errors import DataError

IGNORED_OVERRIDE_KEYS = ("seed", "run.", "cache.", "hydra.", "hydra/")


@dataclass
class JobResult:
    """One run directory's results.json, with the overrides that made it."""

    run_dir: Path
    name: str
    seed: int
    overrides: list[str]
    nodes: dict[str, dict[str, Any]]

    @property
    def group(self) -> str:
        kept = [o for o in self.overrides if not o.lstrip("+~").startswith(IGNORED_OVERRIDE_KEYS)]
        return " ".join(sorted(kept)) or self.name


@dataclass
class Stat:
    group: str
    node: str
    metric: str
    values: list[float]
    seeds: list[int]
    missing_in: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return fmean(self.values)

    @property
    def std(self) -> float:
        return stdev(self.values) if self.n > 1 else 0.0

    @property
    def ci95(self) -> float:
        """Half-width of the Student-t 95% interval of the mean (0 for a single value)."""
        if self.n < 2:
            return 0.0
        from scipy.stats import t

        return float(t.ppf(0.975, self.n - 1)) * self.std / math.sqrt(self.n)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group, "node": self.node, "metric": self.metric, "n": self.n,
            "mean": self.mean, "std": self.std, "ci95_low": self.mean - self.ci95, "ci95_high": self.mean + self.ci95,
            "seeds": self.seeds, "missing_in": self.missing_in,
        }


def find_results(paths: list[Path]) -> list[Path]:
    """Every results.json at or below the given paths (a run dir or a multirun dir)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file() and path.name == RESULTS_FILE:
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(path.rglob(RESULTS_FILE)))
        else:
            raise DataError(f"no such run directory or results file: {path}", hint="pass a run or multirun directory")
    if not found:
        raise DataError(f"no {RESULTS_FILE} under {', '.join(map(str, paths))}", hint="run malak-run first")
    return found


def load_job(results_file: Path) -> JobResult:
    try:
        data = json.loads(results_file.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable results file: {exc}", path=str(results_file)) from None
    run = data.get("run", {})
    nodes = data.get("nodes", {})
    nodes.update(latency_points(results_file.parent, nodes))
    return JobResult(
        run_dir=results_file.parent,
        name=run.get("name", "run"),
        seed=int(run.get("seed", 0)),
        overrides=list(run.get("overrides", [])),
        nodes=nodes,
    )


LATENCY_BY_INPUT = "latency_by_input"
PER_LAYER_LATENCY = "per_layer_latency"


def provides(summary: dict[str, Any], layout: str) -> bool:
    """Whether a node's metrics follow a documented layout (its stage's ``provides``)."""
    return layout in summary.get("provides", [])


def latency_points(run_dir: Path, nodes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One pseudo-node ``<profile node>/<variant>`` per profiled variant, joining its latency
    with the accuracy and size of the node that produced the profiled model (found through
    the profile node's input wiring in its result.json), so reports can plot accuracy
    against latency."""
    points: dict[str, dict[str, Any]] = {}
    for name, summary in nodes.items():
        latency = summary.get("metrics", {}).get("latency")
        result_file = run_dir / name / "result.json"
        if not provides(summary, LATENCY_BY_INPUT) or not isinstance(latency, dict) or not result_file.exists():
            continue
        inputs = json.loads(result_file.read_text()).get("inputs", {})
        for variant, figures in latency.items():
            source = (inputs.get(variant) or {}).get("ref", "").split(".")[0]
            source_metrics = nodes.get(source, {}).get("metrics", {})
            metrics = {"latency_median_ms": figures.get("median_ms"), "latency_p90_ms": figures.get("p90_ms"),
                       "speedup_vs_torch_fp32": figures.get("speedup_vs_torch_fp32")}
            metrics |= {k: source_metrics[k] for k in ("test_top1", "size_bytes") if k in source_metrics}
            status = summary.get("status")
            points[f"{name}/{variant}"] = {"stage": "profile_point", "status": status, "metrics": metrics}
    return points


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def aggregate(jobs: list[JobResult]) -> list[Stat]:
    """One Stat per (group, node, scalar metric), in a stable order."""
    groups: dict[str, list[JobResult]] = {}
    for job in jobs:
        groups.setdefault(job.group, []).append(job)
    stats: list[Stat] = []
    for group, members in groups.items():
        names = {(n, m) for j in members for n, r in j.nodes.items() for m, v in r.get("metrics", {}).items()
                 if _numeric(v)}
        for node, metric in sorted(names):
            stats.append(_stat(group, node, metric, members))
    return stats


def _stat(group: str, node: str, metric: str, members: list[JobResult]) -> Stat:
    stat = Stat(group, node, metric, [], [])
    for job in sorted(members, key=lambda j: j.seed):
        value = job.nodes.get(node, {}).get("metrics", {}).get(metric)
        if _numeric(value):
            stat.values.append(float(value))
            stat.seeds.append(job.seed)
        else:
            stat.missing_in.append(str(job.run_dir))
    return stat
