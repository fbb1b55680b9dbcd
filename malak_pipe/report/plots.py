"""Plots of aggregated results (matplotlib, PNG) and the report page that embeds them.

- accuracy against size and against latency, one point per (group, node) variant, error
  bars over seeds, the Pareto front (higher accuracy, smaller size / lower latency) marked;
- the per-layer latency bar chart of a profile node, when a run has one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from malak_pipe.report.aggregate import PER_LAYER_LATENCY, JobResult, Stat, provides

ACCURACY = "test_top1"
COSTS = {"size_bytes": "serialized size (bytes)", "latency_median_ms": "batch-1 latency, median (ms)"}


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated by another (lower cost x, higher accuracy y)."""
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            (x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _variants(stats: list[Stat], cost: str) -> list[dict[str, Any]]:
    by_key = {(s.group, s.node, s.metric): s for s in stats}
    rows = []
    for (group, node, metric), acc in by_key.items():
        size = by_key.get((group, node, cost))
        if metric == ACCURACY and size is not None:
            label = node if len({s.group for s in stats}) == 1 else f"{node} [{group}]"
            rows.append({"label": label, "x": size.mean, "xerr": size.std, "y": 100 * acc.mean, "yerr": 100 * acc.std})
    return rows


def _scatter(rows: list[dict[str, Any]], xlabel: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        ax.errorbar(row["x"], row["y"], xerr=row["xerr"], yerr=row["yerr"], fmt="o", capsize=3)
        ax.annotate(row["label"], (row["x"], row["y"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    front = pareto_front([(r["x"], r["y"]) for r in rows])
    ax.plot([rows[i]["x"] for i in front], [rows[i]["y"] for i in front], "--", color="tab:red", label="Pareto front")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test top-1 (%)")
    if rows and max(r["x"] for r in rows) / max(min(r["x"] for r in rows), 1e-9) > 20:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _layer_chart(job: JobResult, path: Path) -> Path | None:
    """Bar chart of the slowest layers from the first profile node's per-layer table."""
    for node, res in job.nodes.items():
        layers = res.get("metrics", {}).get("per_layer_top")
        if provides(res, PER_LAYER_LATENCY) and layers:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            names = [str(layer.get("name")) for layer in layers][::-1]
            times = [float(layer.get("time_ms", 0.0)) for layer in layers][::-1]
            fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.2))
            ax.barh(names, times, color="tab:blue")
            ax.set_xlabel("time per inference (ms)")
            ax.set_title(f"per-layer latency ({node})")
            fig.tight_layout()
            fig.savefig(path, dpi=120)
            plt.close(fig)
            return path
    return None


def write_plots(jobs: list[JobResult], stats: list[Stat], out_dir: Path) -> dict[str, Path]:
    """Write the PNGs that the data supports and a report.md page embedding them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for cost, label in COSTS.items():
        rows = _variants(stats, cost)
        if rows:
            written[f"accuracy_vs_{cost}"] = _scatter(rows, label, out_dir / f"accuracy_vs_{cost}.png")
    if jobs:
        chart = _layer_chart(jobs[0], out_dir / "per_layer_latency.png")
        if chart:
            written["per_layer_latency"] = chart
    page = ["# malak-pipe report", "", "Tables: [report.md](report.md), [report.csv](report.csv).", ""]
    page += [f"## {name.replace('_', ' ')}\n\n![{name}]({path.name})\n" for name, path in written.items()]
    (out_dir / "index.md").write_text("\n".join(page))
    (out_dir / "plots.json").write_text(json.dumps({k: str(v) for k, v in written.items()}, indent=2))
    written["index"] = out_dir / "index.md"
    return written
