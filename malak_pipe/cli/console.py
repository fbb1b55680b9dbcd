"""Rich console output only: the live view of the nodes, progress bars, the summary table.

On a terminal the nodes are shown in a live table with a progress bar for the running
stage; elsewhere (CI, pipes, tests) each event is one plain line, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import os
import string
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from malak_pipe.stage import Stage

STATUS_STYLE = {
    "pending": "dim",
    "running": "bold yellow",
    "ok": "green",
    "cached": "cyan",
    "skipped": "magenta",
    "failed": "bold red",
    "infeasible": "red",
    "pruned": "yellow",
}


class _MetricFormatter(string.Formatter):
    """Python's format specs plus ``bytes``, ``M`` (millions) and ``yes|no`` (a word by a boolean)."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "bytes":
            return _bytes(float(value))
        if format_spec == "M":
            return f"{float(value) / 1e6:.2f} M"
        if "|" in format_spec:
            yes, no = format_spec.split("|", 1)
            return yes if value else no
        return super().format_field(value, format_spec)


_FORMATTER = _MetricFormatter()


def _bytes(v: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.1f} {unit}"
    return f"{v:.0f} B"


def format_metric(template: str, value: Any) -> str:
    """One metric through its stage's template; the bare value where the template does not fit it."""
    try:
        return _FORMATTER.format(template, value).strip()
    except (TypeError, ValueError, IndexError, KeyError):
        return str(value)


def _fallback_summary(metrics: dict[str, Any]) -> dict[str, str]:
    """For a stage that declares no summary: its first scalar metrics as ``name value``."""
    scalars = [name for name, value in metrics.items() if isinstance(value, int | float | str | bool)]
    return {name: f"{name} {{}}" for name in scalars}


def key_metrics(metrics: dict[str, Any], summary: dict[str, str] | None, limit: int = 3) -> str:
    """The first ``limit`` metrics of a stage's ``summary`` declaration that the node has."""
    templates = summary if summary is not None else _fallback_summary(metrics)
    shown = [format_metric(t, metrics[name]) for name, t in templates.items() if metrics.get(name) is not None]
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
        self.summaries: dict[str, dict[str, str] | None] = {}
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
    def session(self, nodes: dict[str, type[Stage]]) -> Iterator[RunConsole]:
        self.summaries = {n: stage.summary for n, stage in nodes.items()}
        self.states = {n: {"stage": s.name, "status": "pending", "time": "", "info": ""} for n, s in nodes.items()}
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
        st.update(status=status, time=f"{seconds:.2f}s", info=note or key_metrics(metrics, self.summaries.get(name)))
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
            detail = res.reason or res.error or key_metrics(res.metrics, self.summaries.get(name), limit=4)
            table.add_row(name, res.stage, f"[{style}]{res.status}[/]", f"{res.duration_s:.2f}s", escape(detail))
        self.console.print(table)

    def plan(self, rows: list[tuple[str, ...]]) -> None:
        table = Table(title="plan (nothing runs)", header_style="bold")
        for column in ("node", "stage", "inputs", "cache", "key", "why it runs"):
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.console.print(table)
