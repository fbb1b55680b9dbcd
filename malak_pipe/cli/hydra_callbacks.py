"""Hydra callbacks: at the end of a multirun, aggregate the jobs into the report tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

# Read by cli.run_main after a multirun: jobs may run in other processes (joblib, SLURM),
# so failures are counted from their results.json files, not from in-process state.
SWEEP_OUTCOME: dict[str, Any] = {"failed_jobs": 0}


class MultirunReport(Callback):
    """Writes <sweep dir>/report/report.{md,csv,json,tex} and prints the Markdown table."""

    def __init__(self, metrics: list[str] | None = None, plots: bool = True, print_table: bool = True):
        self.metrics = list(metrics) if metrics else None
        self.plots = plots
        self.print_table = print_table

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from malak_pipe.errors import MalakError
        from malak_pipe.report.aggregate import aggregate, find_results, load_job
        from malak_pipe.report.tables import select, to_markdown, write_tables

        sweep_dir = Path(str(config.hydra.sweep.dir))
        try:
            jobs = [load_job(p) for p in find_results([sweep_dir])]
        except MalakError as exc:
            print(f"malak-report: nothing to aggregate ({exc.render()})")
            return
        SWEEP_OUTCOME["failed_jobs"] = sum(
            any(n.get("status") == "failed" for n in job.nodes.values()) for job in jobs
        )
        stats = select(aggregate(jobs), self.metrics, None)
        out_dir = sweep_dir / "report"
        write_tables(stats, out_dir, ["md", "csv", "json", "tex"])
        if self.plots:
            from malak_pipe.report.plots import write_plots

            write_plots(jobs, stats, out_dir)
        if self.print_table:
            print(to_markdown(stats))
        print(f"malak-report: {len(jobs)} job(s) -> {out_dir}")
