"""The result files: result.json per node, run.json and results.json per run.

Every number a report shows comes from these files, and each names its config, its cache
key and the sha256 of its inputs and outputs, so it can be traced back and regenerated.
"""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from malak_pipe.engine.atomic import write_json_atomic

Status = Literal["pending", "running", "ok", "cached", "skipped", "failed", "infeasible", "pruned"]
RESULT_FILE = "result.json"
RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
SCHEMA_VERSION = 1


class ArtifactRecord(BaseModel):
    ref: str | None = None
    file: str | None = None
    sha256: str
    bytes: int


class NodeResult(BaseModel):
    """The content of one node's result.json."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    node: str
    stage: str
    version: int
    status: Status
    provides: list[str] = Field(default_factory=list)
    reason: str | None = None
    error: str | None = None
    key: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, ArtifactRecord] = Field(default_factory=dict)
    outputs: dict[str, ArtifactRecord] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    started_at: str | None = None
    duration_s: float = 0.0
    computed_duration_s: float | None = None
    environment: dict[str, Any] = Field(default_factory=dict)

    def write(self, node_dir: Path) -> None:
        write_json_atomic(node_dir / RESULT_FILE, self.model_dump(mode="json"))

    def summary(self) -> dict[str, Any]:
        """The folded view of this node kept in results.json."""
        return {
            "stage": self.stage,
            "status": self.status,
            "provides": self.provides,
            "reason": self.reason,
            "error": self.error,
            "key": self.key,
            "duration_s": round(self.duration_s, 4),
            "metrics": self.metrics,
            "warnings": self.warnings,
        }


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@cache
def environment() -> dict[str, Any]:
    """Versions and machine facts, read without importing torch or onnxruntime."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "malak_pipe": _dist_version("malak-pipe"),
        "torch": _dist_version("torch"),
        "onnxruntime": _dist_version("onnxruntime"),
        "onnx": _dist_version("onnx"),
        "numpy": _dist_version("numpy"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_sha(cwd: Path | None = None) -> str | None:
    """The commit of the working tree the run started from, if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_results(run_dir: Path, run_info: dict[str, Any], results: dict[str, NodeResult]) -> None:
    """Fold every node's result into results.json at the run dir root."""
    write_json_atomic(
        run_dir / RESULTS_FILE,
        {
            "schema_version": SCHEMA_VERSION,
            "run": run_info,
            "nodes": {name: res.summary() for name, res in results.items()},
        },
    )
