"""Rich console output only: the live view of the nodes, progress bars, the summary table.

On a terminal the nodes are shown in a live table with a progress bar for the running
stage; elsewhere (CI, pipes, tests) each event is one plain line, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

STATUS_STYLE = {
    "pending": "dim",
    "running": "bold yellow",
    "ok": "green",
    "cached": "cyan",
    "skipped": "magenta",
    "failed": "bold red",
}
def _percent(v: float) -> str:
    return f"{100 * v:.2f}%"


def _bytes(v: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.1f} {unit}"
    return f"{v:.0f} B"


# The metrics shown in the tables, in order of preference, each with a short label and a
# formatter; the first few a node has are shown.
KEY_METRICS: dict[str, tuple[str, Any]] = {
    "test_top1": ("top1", _percent),
    "top1": ("top1", _percent),
    "bit_exact_rate": ("bit-exact", _percent),
    "test_top1_drop_vs_baseline_pp": ("drop", lambda v: f"{v:+.2f}pp"),
    "compression_vs_baseline": ("", lambda v: f"{v:.2f}x smaller"),
    "sparsity": ("sparsity", _percent),
    "size_bytes": ("", _bytes),
    "flash_bytes": ("flash", _bytes),
    "instructions_per_inference": ("instr", lambda v: f"{v / 1e6:.2f} M"),
    "ram_bytes": ("ram", _bytes),
    "parity_max_abs_diff": ("parity", lambda v: f"{v:.1e}"),
    "drift_detected": ("drift", str),
    "best_variant": ("fastest", str),
    "best_speedup_vs_torch_fp32": ("", lambda v: f"{v:.1f}x vs torch fp32"),
    "self_check_ok": ("drift self-check", lambda v: "passed" if v else "FAILED"),
    "agreement_with_torch_int8_top1": ("agrees w/ torch int8", _percent),
    "n_train": ("train", str),
}


def format_metric(name: str, value: Any) -> str:
    label, fmt = KEY_METRICS.get(name, (name, str))
    try:
        text = fmt(value)
    except (TypeError, ValueError):
        text = str(value)
    return f"{label} {text}".strip()


def key_metrics(metrics: dict[str, Any], limit: int = 3) -> str:
    labels: set[str] = set()
    shown = []
    for name, (label, _) in KEY_METRICS.items():
        if metrics.get(name) is not None and (label not in labels or not label):
            labels.add(label)
            shown.append(format_metric(name, metrics[name]))
    return ", ".join(shown[:limit])


class _PlainProgress:
    def __init__(self, console: Console, node: str, total: int | None, description: str):
        self.console, self.node, self.total, self.description = console, node, total, description
        self.done = 0
        self._last = 0.0

    def advance(self, steps: int = 1, **fields: Any) -> None:
        self.done += steps
        now = time.monotonic()
        if now - self._last >= 10 or (self.total and self.done >= self.total):
            self._last = now
            extra = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
            of = f"/{self.total}" if self.total else ""
            self.console.print(escape(f"  [{self.node}] {self.description} {self.done}{of} {extra}".rstrip()))


class _RichProgress:
    def __init__(self, progress: Progress, task_id: Any):
        self.progress, self.task_id = progress, task_id

    def advance(self, steps: int = 1, **fields: Any) -> None:
        info = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        self.progress.update(self.task_id, advance=steps, info=info)


def _default_console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=140)  # logs and CI: do not wrap at 80
    return console


class RunConsole:
    """The console of one run: node states, progress, logs and the final summary."""

    def __init__(self, live: bool | None = None, console: Console | None = None):
        self.console = console or _default_console()
        self.live_enabled = self.console.is_terminal if live is None else live
        self.states: dict[str, dict[str, Any]] = {}
        self._live: Live | None = None
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        )

    # -- lifecycle ------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, nodes: dict[str, str]) -> Iterator[RunConsole]:
        self.states = {n: {"stage": s, "status": "pending", "time": "", "info": ""} for n, s in nodes.items()}
        if not self.live_enabled:
            yield self
            return
        with Live(self._render(), console=self.console, refresh_per_second=8, transient=True) as live:
            self._live = live
            try:
                yield self
            finally:
                self._live = None

    def _render(self) -> Group:
        table = Table(show_header=True, header_style="bold", box=None)
        for column in ("node", "stage", "status", "time", "metrics"):
            table.add_column(column)
        for name, st in self.states.items():
            style = STATUS_STYLE[st["status"]]
            table.add_row(name, st["stage"], f"[{style}]{st['status']}[/]", st["time"], escape(st["info"]))
        return Group(table, self._progress)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    # -- events ---------------------------------------------------------------------
    def node_started(self, name: str) -> None:
        self.states[name]["status"] = "running"
        if self.live_enabled:
            self._refresh()
        else:
            self.console.print(escape(f"[{name}] running ({self.states[name]['stage']})"))

    def node_finished(self, name: str, status: str, seconds: float, metrics: dict[str, Any], note: str = "") -> None:
        st = self.states[name]
        st.update(status=status, time=f"{seconds:.2f}s", info=note or key_metrics(metrics))
        if self.live_enabled:
            self._refresh()
        else:
            style = STATUS_STYLE[status]
            detail = escape(st["info"])
            self.console.print(f"{escape(f'[{name}]')} [{style}]{status}[/] {seconds:.2f}s {detail}".rstrip())

    def log(self, node: str, message: str) -> None:
        self.console.print(escape(f"  [{node}] {message}"))

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}")

    @contextlib.contextmanager
    def progress(self, node: str, total: int | None, description: str) -> Iterator[Any]:
        if not self.live_enabled:
            yield _PlainProgress(self.console, node, total, description)
            return
        task_id = self._progress.add_task(f"{node}: {description}", total=total, info="")
        self._refresh()
        try:
            yield _RichProgress(self._progress, task_id)
        finally:
            self._progress.remove_task(task_id)
            self._refresh()

    # -- tables ---------------------------------------------------------------------
    def summary(self, results: dict[str, Any], run_dir: str) -> None:
        table = Table(title=f"malak-run: {run_dir}", header_style="bold")
        for column in ("node", "stage", "status", "time", "key metrics / reason"):
            table.add_column(column, overflow="fold")
        for name, res in results.items():
            style = STATUS_STYLE[res.status]
            detail = res.reason or res.error or key_metrics(res.metrics, limit=4)
            table.add_row(name, res.stage, f"[{style}]{res.status}[/]", f"{res.duration_s:.2f}s", escape(detail))
        self.console.print(table)

    def plan(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        table = Table(title="plan (nothing runs)", header_style="bold")
        for column in ("node", "stage", "inputs", "cache", "key"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)
