"""What a finished search writes to ``<sweep dir>/report``.

    search.md, search.json   every trial (params, state, objectives, constraint metrics), the
                             Pareto front, the pick with its test top-1 and on-target figures
    search_<x>.png           val top-1 vs flash, RAM and instructions; infeasible trials grey
    experiment/best.yaml     an experiment that reproduces the pick with plain malak-run:
                             malak-run hydra.searchpath=[file://<sweep dir>/report] +experiment=best
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from malak_pipe.search.front import TrialRecord
from malak_pipe.search.goals import Objective

PLOTS = {
    "flash": ("firmware_build.flash_bytes", "flash (bytes)"),
    "ram": ("firmware_build.ram_bytes", "RAM (bytes)"),
    "instructions": ("sim_run.instructions_per_inference", "instructions per inference"),
}


def override_tree(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}`` (values parsed as YAML scalars)."""
    import yaml

    tree: dict[str, Any] = {}
    for item in overrides:
        key, _, raw = item.partition("=")
        node = tree
        *parents, leaf = key.lstrip("+").split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw) if raw else None
    return tree


def is_group_override(item: str, groups: set[str]) -> bool:
    """``data=digits`` or ``stage/train=cifar10_sgd`` selects a config group option."""
    key = item.partition("=")[0].lstrip("+")
    return "." not in key and (key in groups or "/" in key)


def write_best(
    out_dir: Path, overrides: list[str], best: TrialRecord, study: str, groups: set[str], overlays: set[str]
) -> tuple[Path, list[str]]:
    """``experiment/best.yaml``: every override the pick ran with (the base experiment and the
    command line's groups in its defaults list, values in its body), no search settings.

    ``overlays`` are groups the primary config applies after the experiment (``debug``): an
    experiment cannot select them, so they are returned, to go on the command line — with the
    pick's values after them, since an overlay's values would otherwise win over the file's."""
    import yaml

    kept = [o for o in overrides if not o.lstrip("+").startswith(("run.trial", "hydra.", "hydra/"))]
    selected = [o for o in kept if is_group_override(o, groups)]
    extra = [o.lstrip("+") for o in selected if o.lstrip("+").partition("=")[0] in overlays]
    defaults: list[Any] = [o.partition("=")[2] for o in selected if o.lstrip("+").startswith("experiment=")]
    for item in selected:
        key, _, value = item.lstrip("+").partition("=")
        if key != "experiment" and key not in overlays:
            defaults.append({f"override /{key}": value})
    values = [o for o in kept if not is_group_override(o, groups)]
    body: dict[str, Any] = {"defaults": [*defaults, "_self_"]}
    body.update(override_tree(values))
    if extra:
        extra += values
    path = out_dir / "experiment" / "best.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# @package _global_\n"
        f"# The pick of search '{study}' (trial {best.number}): {json.dumps(best.params, sort_keys=True)}\n"
        f"#   {reproduce_command(out_dir, extra)}\n"
    )
    path.write_text(header + yaml.safe_dump(body, sort_keys=False))
    return path, extra


def reproduce_command(out_dir: Path, extra: list[str]) -> str:
    return " ".join(["malak-run", f"hydra.searchpath=[file://{out_dir.resolve()}]", "+experiment=best", *extra])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def to_markdown(summary: dict[str, Any]) -> str:
    objectives = [o["metric"] for o in summary["objectives"]]
    head = ["trial", "state", *objectives, "params"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    front = {t["number"] for t in summary["front"]}
    for trial in summary["trials"]:
        mark = " *" if trial["number"] in front else ""
        values = [_cell(v) for v in trial["values"]] if trial["feasible"] else ["–"] * len(objectives)
        params = ", ".join(f"{k}={_cell(v)}" for k, v in trial["params"].items())
        rows.append(f"| {trial['number']}{mark} | {trial['state']} | " + " | ".join(values) + f" | {params} |")
    lines = [f"# Search '{summary['study']}'", "", f"{summary['counts']}", "", "\n".join(rows), "",
             "`*` marks the Pareto front (feasible trials only; test figures never chose anything)."]
    pick = summary.get("pick")
    if pick:
        lines += ["", f"**Pick: trial {pick['number']}** {json.dumps(pick['params'], sort_keys=True)}",
                  "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_cell(v)} |" for k, v in sorted(pick.get("test", {}).items())]
        lines += ["", f"Reproduce: `{summary['reproduce']}`"]
    return "\n".join(lines) + "\n"


def write_plots(trials: list[TrialRecord], front: list[TrialRecord], accuracy: str, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    on_front = {t.number for t in front}
    for name, (metric, label) in PLOTS.items():
        points = [(t, t.metrics.get(metric), t.metrics.get(accuracy)) for t in trials]
        points = [(t, x, y) for t, x, y in points if x is not None and y is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for t, x, y in points:
            style = {"color": "tab:red", "s": 40} if t.number in on_front else (
                {"color": "tab:blue", "s": 18} if t.feasible else {"color": "0.7", "s": 14})
            ax.scatter([x], [100 * y], **style)
        ax.set_xlabel(label)
        ax.set_ylabel("val top-1 on target (%)")
        ax.set_title(f"{len(points)} trials: front red, infeasible grey")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"search_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def write_report(out_dir: Path, summary: dict[str, Any], trials: list[TrialRecord], front: list[TrialRecord],
                 objectives: list[Objective]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "search.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    (out_dir / "search.md").write_text(to_markdown(summary))
    write_plots(trials, front, objectives[0].metric, out_dir)


def summarize(study: str, trials: list[TrialRecord], front: list[TrialRecord], objectives: list[Objective],
              pick: TrialRecord | None, test: dict[str, Any], reproduce: str) -> dict[str, Any]:
    states = {s: sum(t.state == s for t in trials) for s in ("complete", "infeasible", "pruned", "error")}
    feasible = sum(t.feasible for t in trials)
    counts = (f"{len(trials)} trials: {feasible} feasible, {states['infeasible']} infeasible, "
              f"{states['pruned']} pruned, {states['error']} errors; front {len(front)}")
    return {
        "study": study,
        "objectives": [o.model_dump() for o in objectives],
        "counts": counts,
        "states": states,
        "trials": [asdict(t) for t in trials],
        "front": [asdict(t) for t in front],
        "pick": {**asdict(pick), "test": test} if pick else None,
        "reproduce": reproduce,
    }
