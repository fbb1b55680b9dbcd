"""A whole pipeline from Python (notebooks, scripts): ``malak_pipe.run(overrides=[...])``.

    import malak_pipe
    result = malak_pipe.run(["+experiment=smoke", "stage.train.epochs=2"])
    result.ok, result.run_dir, result["train"]["test_top1"], result.nodes["sim_run"]["status"]

The overrides are those of ``malak-run`` (Hydra's syntax); the config is composed with
Hydra's compose API from the same tree and run through the same engine and cache, so a run
from Python and one from the shell share cache entries. One run per call: sweeps
(``seed=0,1,2``) are loops in Python, or ``malak-run -m``. Config and data errors raise
their :class:`~malak_pipe.errors.MalakError` before anything runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from malak_pipe.errors import ConfigError

CONFIG_MODULE = "malak_pipe.conf"


@dataclass(frozen=True)
class RunResult:
    """What one run left: its exit code (0 ok, 1 a node failed), its directory and the
    content of its results.json (empty for ``run.plan=true``, which runs nothing)."""

    exit_code: int
    run_dir: Path
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """node -> {"stage", "status", "metrics", ...} (results.json's ``nodes``)."""
        return self.results.get("nodes", {})

    def __getitem__(self, node: str) -> dict[str, Any]:
        """The metrics of ``node``."""
        if node not in self.nodes:
            raise KeyError(f"no node '{node}' in this run (nodes: {', '.join(self.nodes)})")
        return self.nodes[node].get("metrics", {})


def compose(overrides: Sequence[str] = (), config_name: str = "config") -> Any:
    """The composed (unresolved) DictConfig of ``malak-run <overrides>``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from malak_pipe.cli.run import _normalize_argv

    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=_normalize_argv(list(overrides)))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(
            f"cannot compose the config: {str(exc).strip()[:600]}",
            path="overrides",
            hint="Hydra's message above says what to change (malak-run --cfg job shows the config); "
            "malak_pipe.run runs one job: a sweep (a=1,2) is a loop over malak_pipe.run calls",
        ) from None


def default_run_dir(name: str, cwd: Path | None = None) -> Path:
    """outputs/runs/<name>/<time> under ``cwd``: where malak-run puts a run."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return (cwd or Path.cwd()) / "outputs" / "runs" / name / stamp


def run(
    overrides: Sequence[str] = (),
    *,
    run_dir: Path | str | None = None,
    console: bool = False,
    events: Any = None,
) -> RunResult:
    """Compose the config with ``overrides``, validate it and run the pipeline.

    ``run_dir``: where the result files go (default outputs/runs/<name>/<time>). ``console``:
    print the live view and tables as malak-run does; else nothing is printed (``events``:
    any :class:`~malak_pipe.engine.events.RunEvents` to receive the run's life instead).
    """
    from malak_pipe.engine.app import execute
    from malak_pipe.engine.config import to_run_config

    run_cfg, sources = to_run_config(compose(overrides))
    if events is None and console:
        from malak_pipe.cli.console import RunConsole

        events = RunConsole(live=run_cfg.run.live)
    directory = Path(run_dir) if run_dir is not None else default_run_dir(run_cfg.name)
    code = execute(run_cfg, sources, directory, list(overrides), events)
    results_file = directory / "results.json"
    results = json.loads(results_file.read_text()) if results_file.is_file() else {}
    return RunResult(exit_code=code, run_dir=directory, results=results)
