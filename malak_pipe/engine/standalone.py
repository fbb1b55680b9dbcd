"""Helpers to run one stage through the real context and cache, without Hydra.

    result, outputs = run_stage(PTQStatic, {"backend": "x86"}, {"model": path, "data": path}, tmp_path)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from malak_pipe.engine.context import NodeContext
from malak_pipe.stage import Stage, StageResult


def run_stage(
    stage_cls: type[Stage],
    config: dict[str, Any],
    inputs: dict[str, Path],
    workdir: Path,
    *,
    input_metrics: dict[str, dict[str, Any]] | None = None,
    node: str | None = None,
) -> tuple[StageResult, dict[str, Path]]:
    """Validate ``config``, run the stage in ``workdir/<node>`` and return its result and output paths."""
    cfg = stage_cls.Config.model_validate(config)
    name = node or stage_cls.name
    node_dir = Path(workdir) / name
    node_dir.mkdir(parents=True, exist_ok=True)
    ctx = NodeContext(name, stage_cls, node_dir, dict(inputs), input_metrics or {}, console=None)
    result = stage_cls().run(cfg, ctx)
    return result, dict(ctx.saved)
