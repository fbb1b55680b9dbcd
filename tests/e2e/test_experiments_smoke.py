"""Every experiment in conf/experiment/ smoke-runs through the real CLI (debug=smoke).

This is the check users copy into their own CI: the same DAG as the real experiment, in
seconds, with a synthetic stand-in where a dataset is absent (CIFAR-10 here), so a broken
config, wiring or stage is caught before a long run. All experiments share one cache, so
nodes that are identical across experiments run once.
"""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from tests.e2e.test_cli import malak_run

EXPERIMENTS = sorted(
    p.name[:-5] for p in (files("malak_pipe.conf") / "experiment").iterdir() if p.name.endswith(".yaml")
)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke-cache")


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_smoke_runs(experiment, tmp_path, shared_cache):
    out = malak_run(tmp_path, f"experiment={experiment}", "debug=smoke", cache=shared_cache)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    [results] = list((tmp_path / "outputs").rglob("results.json"))
    nodes = json.loads(results.read_text())["nodes"]
    assert nodes, "no node ran"
    bad = {n: r["status"] for n, r in nodes.items() if r["status"] not in ("ok", "cached")}
    assert not bad, f"nodes not ok: {bad}"
    data_nodes = [r for r in nodes.values() if r["stage"] == "data"]
    assert all("synthetic_stand_in" in r["metrics"] for r in data_nodes)
