"""What the benchmarks share: run ``malak-run`` as a user does and read what it writes.

A benchmark measures exactly what ``malak-run`` does: it runs the CLI in a subprocess (an
experiment config and ``key=value`` overrides, ``-m`` for sweeps) and reads the figures from
``results.json`` and the nodes' ``result.json``; it copies no stage logic.

    run = malak_run(["+experiment=smoke"], workdir, workdir / "run")
    nodes(run.path)["train"]["metrics"]["test_top1"]
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
MALAK_RUN = BIN / "malak-run"


@dataclass(frozen=True)
class Run:
    """One finished ``malak-run``: where it wrote, its wall and CPU seconds, its console output."""

    path: Path
    wall_s: float
    cpu_s: float
    stdout: str
    returncode: int = 0


def measured(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of the child, the CompletedProcess) of ``command``.

    CPU time is what a loaded machine distorts least.
    """
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, stdout) of ``command``; SystemExit when it fails."""
    wall, cpu, out = measured(command, cwd, env)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return wall, cpu, out.stdout


def malak_run(
    overrides: list[str],
    cwd: Path,
    path: Path,
    *,
    multirun: bool = False,
    cache_dir: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> Run:
    """Run ``malak-run [-m] overrides`` in ``cwd``, writing its run (or sweep) directory at ``path``.

    ``cache_dir`` becomes MALAK_CACHE_DIR (None: the environment's, else ``cwd``/outputs/cache).
    A failing run is SystemExit when ``check``, else a Run with its ``returncode``.
    """
    where = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    command = [str(MALAK_RUN), *(["-m"] if multirun else []), *overrides, f"{where}={path}"]
    child_env = dict(os.environ, **(env or {}))
    if cache_dir is not None:
        child_env["MALAK_CACHE_DIR"] = str(cache_dir)
    if check:
        wall, cpu, stdout = timed(command, cwd, child_env)
        return Run(path=path, wall_s=wall, cpu_s=cpu, stdout=stdout)
    wall, cpu, out = measured(command, cwd, child_env)
    return Run(path=path, wall_s=wall, cpu_s=cpu, stdout=out.stdout + out.stderr, returncode=out.returncode)


def nodes(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``results.json`` of a run: node -> {stage, status, duration_s, metrics, warnings, ...}."""
    return json.loads((run_dir / "results.json").read_text())["nodes"]


def node_record(run_dir: Path, node: str) -> dict[str, Any]:
    """The ``result.json`` of one node: its config, inputs (with the node they came from), environment."""
    return json.loads((run_dir / node / "result.json").read_text())


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The run directories of a ``-m`` sweep, in job order."""
    jobs = [child for child in sweep_dir.iterdir() if child.name.isdigit() and (child / "results.json").exists()]
    return sorted(jobs, key=lambda child: int(child.name))


def input_nodes(record: dict[str, Any]) -> dict[str, str]:
    """input name -> the node it came from, for a ``result.json``."""
    return {name: entry["ref"].split(".")[0] for name, entry in record["inputs"].items() if entry.get("ref")}


def write_report(out: Path, report: dict[str, Any]) -> None:
    """Write ``report`` as indented JSON at ``out`` (folders created)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")
