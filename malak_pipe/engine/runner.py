"""Executes a validated graph node by node: cache lookup, stage run, result files.

The runner dispatches through the graph's stage classes (found by the registry); it never
names a stage. Each node runs in ``<run_dir>/<node>/`` and leaves result.json there.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from malak_pipe.artifacts import size_of
from malak_pipe.engine.atomic import disk_full_named
from malak_pipe.engine.context import NodeContext
from malak_pipe.engine.graph import Graph, Node
from malak_pipe.engine.keys import KeyParts, key_parts
from malak_pipe.engine.results import ArtifactRecord, NodeResult, environment
from malak_pipe.engine.store import Cache, CacheEntry, OutputRecord
from malak_pipe.errors import DiskFull, MalakError, StageSkipped
from malak_pipe.stage import StageResult

DONE = ("ok", "cached")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class _Produced:
    """What a finished node left for its dependants."""

    paths: dict[str, Path]
    hashes: dict[str, str]
    metrics: dict[str, Any]


@dataclass
class Runner:
    graph: Graph
    run_dir: Path
    cache: Cache
    console: Any
    ci: bool = field(default_factory=lambda: os.environ.get("CI", "").lower() == "true")
    results: dict[str, NodeResult] = field(default_factory=dict)
    produced: dict[str, _Produced] = field(default_factory=dict)
    fingerprints: dict[str, str | None] = field(default_factory=dict)

    def execute(self, selected: list[str] | None = None) -> dict[str, NodeResult]:
        """Run every node (or ``selected`` ones) in topological order."""
        order = selected or self.graph.order
        for name in order:
            node = self.graph.nodes[name]
            blocked = self._blocked_reason(node)
            result = self._skip(node, blocked) if blocked else self._run_node(node)
            self.results[name] = result
            result.write(self.run_dir / name)
        return self.results

    def _blocked_reason(self, node: Node) -> str | None:
        if not node.enabled:
            return f"disabled (pipeline.{node.name}.enabled=false)"
        for upstream in sorted(node.upstream):
            res = self.results.get(upstream)
            if res is None or res.status not in DONE:
                status = res.status if res else "not run"
                return f"upstream '{upstream}' {status}"
        return None

    def _skip(self, node: Node, reason: str) -> NodeResult:
        self.console.node_finished(node.name, "skipped", 0.0, {}, note=reason)
        return self._base_result(node, "skipped", reason=reason)

    def _base_result(self, node: Node, status: str, **extra: Any) -> NodeResult:
        return NodeResult(
            node=node.name,
            stage=node.stage.name,
            version=node.stage.version,
            status=status,
            provides=sorted(node.stage.provides),
            config=node.config.model_dump(mode="json"),
            environment=environment(),
            **extra,
        )

    def _inputs(self, node: Node) -> tuple[dict[str, Path], dict[str, str], dict[str, ArtifactRecord]]:
        paths, hashes, records = {}, {}, {}
        for inp, ref in node.inputs.items():
            up = self.produced[ref.node]
            paths[inp] = up.paths[ref.output]
            hashes[inp] = up.hashes[ref.output]
            records[inp] = ArtifactRecord(ref=str(ref), sha256=hashes[inp], bytes=size_of(paths[inp]))
        return paths, hashes, records

    def _run_node(self, node: Node) -> NodeResult:
        paths, hashes, records = self._inputs(node)
        parts = key_parts(node, hashes, self.fingerprints.get(node.name), self.cache.memo_dir)
        key = parts.key
        started, t0 = _now(), time.perf_counter()
        self.console.node_started(node.name)
        with self.cache.lock(key):
            entry = self.cache.lookup(key)
            for note in self.cache.notes:
                self.console.warn(note)
            self.cache.notes.clear()
            hit = entry is not None
            result = self._from_cache(node, entry, key) if hit else self._compute(node, parts, paths)
        result.inputs = records
        result.started_at = started
        result.duration_s = time.perf_counter() - t0
        self.console.node_finished(node.name, result.status, result.duration_s, result.metrics, result.reason or "")
        return result

    def _from_cache(self, node: Node, entry: CacheEntry, key: str) -> NodeResult:
        placed = self.cache.materialize(entry, self.run_dir / node.name)
        outputs = entry.outputs
        self._remember(node, placed, {n: r.sha256 for n, r in outputs.items()}, entry.manifest["metrics"])
        return self._base_result(
            node,
            "cached",
            key=key,
            outputs={n: ArtifactRecord(file=r.file, sha256=r.sha256, bytes=r.bytes) for n, r in outputs.items()},
            metrics=entry.manifest["metrics"],
            warnings=entry.manifest.get("warnings", []),
            computed_duration_s=entry.manifest.get("duration_s"),
        )

    def _remember(self, node: Node, paths: dict[str, Path], hashes: dict[str, str], metrics: dict) -> None:
        self.produced[node.name] = _Produced(paths, hashes, metrics)

    def _compute(self, node: Node, parts: KeyParts, paths: dict[str, Path]) -> NodeResult:
        key = parts.key
        node_dir = self.run_dir / node.name
        node_dir.mkdir(parents=True, exist_ok=True)
        input_metrics = {inp: self.produced[ref.node].metrics for inp, ref in node.inputs.items()}
        ctx = NodeContext(node.name, node.stage, node_dir, paths, input_metrics, self.console)
        t0 = time.perf_counter()
        try:
            with disk_full_named(node_dir):
                stage_result = node.stage().run(node.config, ctx)
            self._check_outputs(node, ctx)
        except StageSkipped as exc:
            return self._skipped_by_stage(node, key, exc)
        except MalakError as exc:  # infeasible (a budget) and pruned (a search) are failures of their own kind
            return self._base_result(node, getattr(exc, "status", "failed"), key=key, error=exc.render())
        except Exception as exc:  # a bug or an unexpected library error: keep the traceback
            (node_dir / "error.txt").write_text(traceback.format_exc())
            return self._base_result(
                node, "failed", key=key, error=f"{type(exc).__name__}: {exc} (traceback in {node_dir / 'error.txt'})"
            )
        try:
            return self._finish(node, parts, ctx, stage_result, time.perf_counter() - t0)
        except DiskFull as exc:
            return self._base_result(node, "failed", key=key, error=exc.render())

    def _skipped_by_stage(self, node: Node, key: str, exc: StageSkipped) -> NodeResult:
        if exc.missing_tool and self.ci:
            return self._base_result(node, "failed", key=key, error=f"CI=true and a tool is missing: {exc.reason}")
        return self._base_result(node, "skipped", key=key, reason=exc.reason)

    @staticmethod
    def _check_outputs(node: Node, ctx: NodeContext) -> None:
        missing = [o for o in node.stage.outputs if o not in ctx.saved]
        if missing:
            raise MalakError(f"stage '{node.stage.name}' finished without writing output(s) {missing}")

    def _finish(self, node: Node, parts: KeyParts, ctx: NodeContext, res: StageResult, seconds: float) -> NodeResult:
        key = parts.key
        records = {name: OutputRecord.of(path) for name, path in ctx.saved.items()}
        hashes = {name: rec.sha256 for name, rec in records.items()}
        record = {"stage": node.stage.name, "node": node.name, "version": node.stage.version, "metrics": res.metrics,
                  "warnings": res.warnings, "duration_s": seconds, "key_parts": parts.record()}
        self.cache.put(key, dict(ctx.saved), record)
        self._remember(node, dict(ctx.saved), hashes, res.metrics)
        for warning in res.warnings:
            self.console.warn(f"[{node.name}] {warning}")
        return self._base_result(
            node,
            "ok",
            key=key,
            outputs={n: ArtifactRecord(file=r.file, sha256=r.sha256, bytes=r.bytes) for n, r in records.items()},
            metrics=res.metrics,
            warnings=res.warnings,
            computed_duration_s=seconds,
        )


def input_hashes_for_plan(node: Node, known: dict[str, dict[str, str]]) -> dict[str, str] | None:
    """Input hashes of a node when every upstream output hash is known (plan mode)."""
    hashes = {}
    for inp, ref in node.inputs.items():
        upstream = known.get(ref.node)
        if upstream is None or ref.output not in upstream:
            return None
        hashes[inp] = upstream[ref.output]
    return hashes


__all__ = ["Runner", "input_hashes_for_plan"]
