"""The runner and the cache through the real engine (toy stages, no Hydra)."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from malak_pipe.cli.console import RunConsole
from malak_pipe.engine.app import execute
from malak_pipe.engine.config import parse_run_config
from tests.unit.engine import toy_stages
from tests.unit.engine.toy_stages import CALLS

PIPE = {
    "src": {"stage": "toy_source", "config": {"value": 10}},
    "add": {"stage": "toy_add", "inputs": {"x": "src.out"}, "config": {"amount": 2}},
    "sink": {"stage": "toy_sink", "inputs": {"a": "add"}},
}


def run(tmp_path: Path, name: str, pipeline=PIPE, **top) -> tuple[int, dict]:
    cfg = parse_run_config({"pipeline": pipeline, "run": {"live": False}, **top})
    run_dir = tmp_path / name
    code = execute(cfg, {}, run_dir, [], RunConsole(live=False))
    results = json.loads((run_dir / "results.json").read_text()) if (run_dir / "results.json").exists() else {}
    return code, results


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def test_first_run_computes_second_is_entirely_cached(tmp_path):
    code, first = run(tmp_path, "a")
    assert code == 0
    assert {n: r["status"] for n, r in first["nodes"].items()} == {"src": "ok", "add": "ok", "sink": "ok"}
    assert first["nodes"]["add"]["metrics"] == {"value": 12, "upstream_value": 10}
    CALLS.clear()
    code, second = run(tmp_path, "b")
    assert code == 0
    assert {r["status"] for r in second["nodes"].values()} == {"cached"}
    assert CALLS == []
    assert second["nodes"]["add"]["metrics"]["value"] == 12
    # the cached outputs are materialized in the new run dir
    assert json.loads((tmp_path / "b" / "add" / "json.out.json").read_text()) == {"value": 12}


def test_result_json_traces_config_inputs_and_outputs(tmp_path):
    run(tmp_path, "a")
    res = json.loads((tmp_path / "a" / "add" / "result.json").read_text())
    src = json.loads((tmp_path / "a" / "src" / "result.json").read_text())
    assert res["config"] == {"amount": 2, "mode": "add"}
    assert res["inputs"]["x"]["ref"] == "src.out"
    assert res["inputs"]["x"]["sha256"] == src["outputs"]["out"]["sha256"]
    assert res["outputs"]["out"]["bytes"] > 0
    assert len(res["key"]) == 64
    assert res["environment"]["python"]
    run_json = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run_json["nodes"] == ["src", "add", "sink"]


def test_config_change_invalidates_only_downstream(tmp_path):
    run(tmp_path, "a")
    CALLS.clear()
    pipe = dict(PIPE, add={**PIPE["add"], "config": {"amount": 3}})
    _, res = run(tmp_path, "b", pipe)
    assert res["nodes"]["src"]["status"] == "cached"
    assert res["nodes"]["add"]["status"] == "ok"
    assert CALLS == ["add", "sink"]


def test_cache_disabled_recomputes(tmp_path):
    run(tmp_path, "a")
    CALLS.clear()
    _, res = run(tmp_path, "b", cache={"enabled": False})
    assert {r["status"] for r in res["nodes"].values()} == {"ok"}
    assert CALLS == ["src", "add", "sink"]


def test_corrupted_entry_is_reported_and_recomputed(tmp_path, capsys):
    run(tmp_path, "a")
    key = json.loads((tmp_path / "a" / "add" / "result.json").read_text())["key"]
    cache_root = Path(json.loads((tmp_path / "a" / "run.json").read_text())["cache_dir"])
    stored = cache_root / "objects" / key[:2] / key / "json.out.json"
    stored.unlink()  # break the hard link so the run dir copy stays intact
    stored.write_text('{"value": 999}')
    CALLS.clear()
    _, res = run(tmp_path, "b")
    assert res["nodes"]["add"]["status"] == "ok"
    assert res["nodes"]["add"]["metrics"]["value"] == 12
    assert "add" in CALLS
    assert "corrupted" in capsys.readouterr().out


def test_failure_marks_dependants_skipped_and_exits_nonzero(tmp_path):
    pipe = dict(PIPE, add={**PIPE["add"], "config": {"mode": "fail"}})
    code, res = run(tmp_path, "a", pipe)
    assert code == 1
    assert res["nodes"]["add"]["status"] == "failed"
    assert res["nodes"]["sink"]["status"] == "skipped"
    assert "upstream 'add' failed" in res["nodes"]["sink"]["reason"]
    failed = json.loads((tmp_path / "a" / "add" / "result.json").read_text())
    assert "the toy failed on purpose" in failed["error"]


def test_unexpected_exception_keeps_traceback(tmp_path):
    pipe = dict(PIPE, add={**PIPE["add"], "config": {"mode": "crash"}})
    code, _ = run(tmp_path, "a", pipe)
    assert code == 1
    assert "RuntimeError: boom" in (tmp_path / "a" / "add" / "error.txt").read_text()


def test_missing_tool_skips_locally_fails_under_ci(tmp_path, monkeypatch):
    pipe = dict(PIPE, add={**PIPE["add"], "config": {"mode": "skip_tool"}})
    monkeypatch.delenv("CI", raising=False)
    code, res = run(tmp_path, "a", pipe)
    assert code == 0
    assert res["nodes"]["add"]["status"] == "skipped"
    assert "apt-get install toy-tool" in res["nodes"]["add"]["reason"]
    monkeypatch.setenv("CI", "true")
    code, res = run(tmp_path, "b", pipe)
    assert code == 1
    assert res["nodes"]["add"]["status"] == "failed"


def test_disabled_node_and_only(tmp_path):
    pipe = dict(PIPE, sink={**PIPE["sink"], "enabled": False})
    _, res = run(tmp_path, "a", pipe)
    assert res["nodes"]["sink"]["status"] == "skipped"
    assert "disabled" in res["nodes"]["sink"]["reason"]
    CALLS.clear()
    _, res = run(tmp_path, "b", PIPE, run={"live": False, "only": ["add"]}, cache={"enabled": False})
    assert list(res["nodes"]) == ["src", "add"]


def test_plan_runs_nothing(tmp_path, capsys):
    cfg = parse_run_config({"pipeline": PIPE, "run": {"plan": True, "live": False}})
    assert execute(cfg, {}, tmp_path / "p", [], RunConsole(live=False)) == 0
    assert CALLS == []
    assert not (tmp_path / "p").exists()
    assert "will run" in capsys.readouterr().out
    run(tmp_path, "a")
    CALLS.clear()
    execute(cfg, {}, tmp_path / "p2", [], RunConsole(live=False))
    out = capsys.readouterr().out
    assert out.count("cached") >= 3 and CALLS == []


def _compute_in_process(cache_dir: str, out_dir: str, barrier) -> None:
    import os

    os.environ["MALAK_CACHE_DIR"] = cache_dir
    from tests.unit.engine import toy_stages as ts  # noqa: F401

    barrier.wait()
    cfg = parse_run_config({"pipeline": PIPE, "run": {"live": False}})
    execute(cfg, {}, Path(out_dir), [])


def test_two_processes_on_one_key_leave_one_valid_entry(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    cache_dir = str(tmp_path / "shared-cache")
    procs = [
        ctx.Process(target=_compute_in_process, args=(cache_dir, str(tmp_path / f"r{i}"), barrier)) for i in (0, 1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    statuses = [json.loads((tmp_path / f"r{i}" / "results.json").read_text())["nodes"]["add"]["status"] for i in (0, 1)]
    assert sorted(statuses) == ["cached", "ok"]  # the second waited on the lock and took the entry
    entries = list((Path(cache_dir) / "objects").glob("*/*"))
    assert len(entries) == 3  # src, add, sink: one entry each
    assert not list((Path(cache_dir) / "tmp").glob("*"))


def test_toy_module_is_importable():
    assert toy_stages.Source.name == "toy_source"
