"""Tables of aggregated results: Markdown, CSV, JSON and LaTeX."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

from malak_pipe.report.aggregate import Stat

PERCENT_SUFFIXES = ("top1", "_rate", "agreement")


def _is_fraction_metric(metric: str) -> bool:
    return metric.endswith(PERCENT_SUFFIXES)


def format_value(metric: str, mean: float, std: float, n: int) -> str:
    """'97.22 ± 0.31' (fractions as percent), '+0.12 ± 0.05' (pp), '465,569' (constant counts)."""
    spread = n > 1 and std > 0
    if _is_fraction_metric(metric):
        mean, std = 100 * mean, 100 * std
        return f"{mean:.2f} ± {std:.2f}" if spread else f"{mean:.2f}"
    if metric.endswith("_pp"):
        return f"{mean:+.2f} ± {std:.2f}" if spread else f"{mean:+.2f}"
    if not spread and float(mean).is_integer():
        return f"{int(mean):,}"
    if abs(mean) >= 1e5 or (0 < abs(mean) < 1e-3):
        return f"{mean:.4g} ± {std:.2g}" if spread else f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.3g}" if spread else f"{mean:.4g}"


def select(stats: Iterable[Stat], metrics: list[str] | None, nodes: list[str] | None) -> list[Stat]:
    return [s for s in stats if (not metrics or s.metric in metrics) and (not nodes or s.node in nodes)]


def to_markdown(stats: list[Stat]) -> str:
    """One table per metric: rows are (group, node), columns mean ± std, n, 95% CI."""
    lines: list[str] = []
    for metric in sorted({s.metric for s in stats}):
        unit = " (%)" if _is_fraction_metric(metric) else ""
        lines += [f"### {metric}{unit}", "", "| group | node | mean ± std | n | 95% CI |", "|---|---|---|---|---|"]
        for s in (s for s in stats if s.metric == metric):
            scale = 100 if _is_fraction_metric(metric) else 1
            ci = f"[{scale * (s.mean - s.ci95):.4g}, {scale * (s.mean + s.ci95):.4g}]" if s.n > 1 else "n/a"
            missing = f" (missing in {len(s.missing_in)})" if s.missing_in else ""
            value = format_value(metric, s.mean, s.std, s.n)
            lines.append(f"| {s.group} | {s.node} | {value} | {s.n}{missing} | {ci} |")
        lines.append("")
    return "\n".join(lines)


def to_csv(stats: list[Stat]) -> str:
    buffer = io.StringIO()
    fields = ["group", "node", "metric", "n", "mean", "std", "ci95_low", "ci95_high"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for s in stats:
        writer.writerow(s.as_dict())
    return buffer.getvalue()


def to_json(stats: list[Stat]) -> str:
    return json.dumps([s.as_dict() for s in stats], indent=2)


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        text = text.replace(char, escaped)
    return text


def to_latex(stats: list[Stat]) -> str:
    rows = [r"\begin{tabular}{lllrr}", r"\toprule", r"group & node & metric & mean $\pm$ std & $n$ \\", r"\midrule"]
    for s in stats:
        value = format_value(s.metric, s.mean, s.std, s.n).replace("±", r"$\pm$")
        names = " & ".join(_latex_escape(t) for t in (s.group, s.node, s.metric))
        rows.append(f"{names} & {value} & {s.n} \\\\")
    rows += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(rows)


WRITERS = {"md": to_markdown, "csv": to_csv, "json": to_json, "tex": to_latex}


def write_tables(stats: list[Stat], out_dir: Path, formats: list[str]) -> dict[str, Path]:
    """Write report.<fmt> files for each format; returns their paths."""
    from malak_pipe.engine.atomic import atomic_path

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for fmt in formats:
        path = out_dir / f"report.{fmt}"
        with atomic_path(path) as tmp:
            tmp.write_text(WRITERS[fmt](stats))
        written[fmt] = path
    return written
