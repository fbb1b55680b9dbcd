"""One run of the pipeline, from a validated config to result files and an exit code.

The CLI (malak_pipe.cli.run) hands in the resolved RunConfig, the run directory and its
console; this module owns the order of things: graph, plan or run, result files, summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from malak_pipe import __version__
from malak_pipe.engine.atomic import write_json_atomic
from malak_pipe.engine.config import RunConfig
from malak_pipe.engine.events import RunEvents, SilentEvents
from malak_pipe.engine.graph import Graph, build_graph
from malak_pipe.engine.keys import explain, key_parts
from malak_pipe.engine.results import environment, git_sha, write_results
from malak_pipe.engine.runner import Runner, input_hashes_for_plan
from malak_pipe.engine.store import Cache
from malak_pipe.errors import ConfigError

EXIT_OK, EXIT_FAILED = 0, 1


def cache_root(run_cfg: RunConfig, cwd: Path) -> Path:
    """MALAK_CACHE_DIR, else cache.dir, else outputs/cache under the launch directory."""
    chosen = os.environ.get("MALAK_CACHE_DIR") or run_cfg.cache.dir
    return Path(chosen).expanduser().resolve() if chosen else (cwd / "outputs" / "cache").resolve()


def selected_nodes(graph: Graph, only: list[str] | None) -> list[str]:
    """The nodes to run: all, or the named ones with everything they depend on."""
    if not only:
        return list(graph.order)
    unknown = [n for n in only if n not in graph.nodes]
    if unknown:
        raise ConfigError(
            f"unknown node(s) {unknown}", path="run.only", hint=f"nodes of this pipeline: {', '.join(graph.order)}"
        )
    wanted = set(only).union(*(graph.ancestors(n) for n in only))
    return [n for n in graph.order if n in wanted]


def source_fingerprints(graph: Graph, order: list[str]) -> dict[str, str | None]:
    """Each enabled node's outside-data fingerprint (e.g. the dataset files' content hash)."""
    nodes = (graph.nodes[n] for n in order)
    return {node.name: node.stage.source_fingerprint(node.config) for node in nodes if node.enabled}


def plan_rows(
    graph: Graph, cache: Cache, order: list[str], fingerprints: dict[str, str | None]
) -> list[tuple[str, ...]]:
    """What would run and why: each node's cache state, following known output hashes
    downstream, and for a node that is not cached what differs from its last entry."""
    known: dict[str, dict[str, str]] = {}
    rows: list[tuple[str, ...]] = []
    for name in order:
        node = graph.nodes[name]
        wiring = ", ".join(f"{i}<-{r}" for i, r in node.inputs.items())
        if not node.enabled:
            rows.append((name, node.stage.name, wiring, "disabled", "", ""))
            continue
        hashes = input_hashes_for_plan(node, known)
        previous = cache.previous(node.stage.name, name)
        if hashes is None:
            waiting = sorted({ref.node for ref in node.inputs.values() if ref.node not in known})
            parts = key_parts(node, {}, fingerprints.get(name), cache.memo_dir)
            own = explain(parts, previous, compare_inputs=False) if previous else ""
            why = "; ".join(filter(None, [f"upstream runs: {', '.join(waiting)}", own]))
            rows.append((name, node.stage.name, wiring, "will run", "", why))
            continue
        parts = key_parts(node, hashes, fingerprints.get(name), cache.memo_dir)
        manifest = cache.manifest(parts.key)
        if manifest is not None:
            known[name] = {o: rec["sha256"] for o, rec in manifest["outputs"].items()}
        why = "" if manifest else explain(parts, previous)
        rows.append((name, node.stage.name, wiring, "cached" if manifest else "will run", parts.key[:12], why))
    return rows


def execute(
    run_cfg: RunConfig,
    sources: dict[str, str],
    run_dir: Path,
    overrides: list[str],
    events: RunEvents | None = None,
) -> int:
    """Validate, then plan or run; returns the process exit code (0 ok, 1 a node failed)."""
    graph = build_graph(run_cfg, sources)
    order = selected_nodes(graph, run_cfg.run.only)
    fingerprints = source_fingerprints(graph, order)  # a missing dataset fails here, before any write
    cache = Cache(cache_root(run_cfg, Path.cwd()), enabled=run_cfg.cache.enabled, link=run_cfg.cache.link)
    console = events or SilentEvents()
    if run_cfg.run.plan:
        console.plan(plan_rows(graph, cache, order, fingerprints))
        return EXIT_OK
    run_dir.mkdir(parents=True, exist_ok=True)
    run_info = _run_info(run_cfg, run_dir, overrides, order, cache)
    write_json_atomic(run_dir / "run.json", run_info)
    runner = Runner(graph, run_dir, cache, console, fingerprints=fingerprints)
    with console.session({n: graph.nodes[n].stage for n in order}):
        results = runner.execute(order)
    write_results(run_dir, run_info, results)
    console.summary(results, str(run_dir))
    return exit_code(results, searching=run_cfg.run.trial is not None)


def exit_code(results: dict[str, Any], *, searching: bool) -> int:
    """1 when a node failed; in a search trial, a model that does not fit (infeasible) or a
    trial the search stopped (pruned) is an outcome, not a failure of the run."""
    bad = {"failed"} if searching else {"failed", "infeasible", "pruned"}
    return EXIT_FAILED if any(r.status in bad for r in results.values()) else EXIT_OK


def _run_info(
    run_cfg: RunConfig, run_dir: Path, overrides: list[str], order: list[str], cache: Cache
) -> dict[str, Any]:
    return {
        "name": run_cfg.name,
        "seed": run_cfg.seed,
        "overrides": overrides,
        "run_dir": str(run_dir),
        "cache_dir": str(cache.root) if cache.enabled else None,
        "git_sha": git_sha(Path(__file__).parent),
        "malak_pipe": __version__,
        "nodes": order,
        "config": run_cfg.model_dump(mode="json"),
        "environment": environment(),
    }
