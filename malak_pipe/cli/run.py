"""Console entry points: malak-run (a Hydra app) and malak-report. Thin by design."""

from __future__ import annotations

import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from malak_pipe.errors import MalakError

_state = {"task_started": False, "failed": False}


def _debug_wanted(cfg: DictConfig | None = None) -> bool:
    if os.environ.get("MALAK_DEBUG", "") not in ("", "0"):
        return True
    try:
        return bool(cfg is not None and cfg.run.debug)
    except Exception:  # the config itself may be what is broken
        return False


def _print_error(exc: MalakError, debug: bool) -> None:
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    if debug:
        err.print(traceback.format_exc(), markup=False)
    err.print(f"[bold red]error:[/] {exc.render()}", markup=True)
    if not debug:
        err.print("[dim](set MALAK_DEBUG=1 or run.debug=true for the traceback)[/]")


def _discard_empty_run_dir(run_dir: Path) -> None:
    """After a config error, remove the run dir Hydra made if it holds no result."""
    if run_dir.is_dir() and not any((run_dir / f).exists() for f in ("run.json", "results.json")):
        leftovers = [p for p in run_dir.iterdir() if p.name != ".hydra" and p.suffix != ".log"]
        if not leftovers:
            shutil.rmtree(run_dir, ignore_errors=True)


@hydra.main(version_base="1.3", config_path="pkg://malak_pipe.conf", config_name="config")
def _hydra_task(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from malak_pipe.engine.app import execute
    from malak_pipe.engine.config import to_run_config

    _state["task_started"] = True
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        run_cfg, sources = to_run_config(cfg)
        code = execute(run_cfg, sources, run_dir, list(hydra_cfg.overrides.task), _events(run_cfg))
    except MalakError as exc:
        _print_error(exc, _debug_wanted(cfg))
        _discard_empty_run_dir(run_dir)
        if multirun:
            _state["failed"] = True
            return
        sys.exit(exc.exit_code)
    if code != 0:
        _state["failed"] = True
        if not multirun:
            sys.exit(code)


def _events(run_cfg: Any) -> Any:
    """The console, wrapped so a search trial reports its epochs to the study."""
    from malak_pipe.cli.console import RunConsole

    console = RunConsole(live=run_cfg.run.live)
    if run_cfg.run.trial is None:
        return console
    from malak_pipe.search.trial_events import TrialEvents, TrialSpec

    return TrialEvents(console, TrialSpec.model_validate(run_cfg.run.trial))


def _normalize_argv(argv: list[str]) -> list[str]:
    """Accept ``+experiment=X`` as well as ``experiment=X``.

    conf/config.yaml lists ``experiment: null`` in its defaults (the table of contents shows
    every slot), which makes Hydra refuse the ``+`` form that the Malak docs and many Hydra
    users write. Both forms select the same experiment.
    """
    return [a[1:] if a.startswith("+experiment=") else a for a in argv]


def _register_plugins() -> None:
    """Make ``hydra/sweeper=search`` and ``hydra/launcher=ray_cluster`` available however
    malak-pipe is installed.

    Hydra discovers plugins by walking the ``hydra_plugins`` namespace on disk, which an
    editable install's import hook does not expose; Hydra's public ``register`` covers it."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.malak_ray.launcher import MalakRayLauncher
    from hydra_plugins.malak_search.sweeper import MalakSearchSweeper

    for plugin in (MalakSearchSweeper, MalakRayLauncher):
        Plugins.instance().register(plugin)


def run_main() -> None:
    """malak-run: compose the config, validate the DAG, run it (see --help)."""
    sys.argv = [sys.argv[0], *_normalize_argv(sys.argv[1:])]
    _register_plugins()
    try:
        _hydra_task()
    except SystemExit as exc:
        # Hydra reports its own composition errors (bad YAML, unknown group or key) with
        # exit code 1 before our task starts: those are config errors, so exit 2.
        if exc.code == 1 and not _state["task_started"]:
            sys.exit(2)
        raise
    from malak_pipe.cli.hydra_callbacks import SWEEP_OUTCOME

    if _state["failed"] or SWEEP_OUTCOME["failed_jobs"]:
        sys.exit(1)


def report_main() -> None:
    """malak-report: aggregate results.json files into mean±std tables (see --help)."""
    from malak_pipe.report.cli import main

    try:
        sys.exit(main(sys.argv[1:]))
    except MalakError as exc:
        _print_error(exc, _debug_wanted())
        sys.exit(exc.exit_code)
