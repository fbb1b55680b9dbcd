"""Sweeps: a real three-seed multirun with joblib ends with the mean ± std table; the SLURM
code path (submitit's local executor) runs a tiny sweep; the edgeai commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import malak_run

BIN = Path(sys.executable).parent
FAST = ["experiment=smoke", "stage.train.epochs=1", "data.max_train=300", "data.max_test=100"]


def sweep_dirs(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "outputs" / "multirun").glob("*/*") if p.is_dir())


def test_three_seed_joblib_sweep_writes_the_table(tmp_path):
    out = malak_run(tmp_path, "-m", "hydra/launcher=local", "seed=0,1,2", *FAST)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [sweep] = sweep_dirs(tmp_path)
    assert len(list(sweep.glob("*/results.json"))) == 3
    rows = json.loads((sweep / "report" / "report.json").read_text())
    top1 = [r for r in rows if r["node"] == "train" and r["metric"] == "test_top1"]
    assert len(top1) == 1 and top1[0]["n"] == 3 and top1[0]["seeds"] == [0, 1, 2]
    assert "test_top1" in out.stdout  # the table is printed at the end of the sweep
    # the data node is identical across seeds: computed once, then taken from the cache
    statuses = [json.loads(p.read_text())["nodes"]["data"]["status"] for p in sweep.glob("*/results.json")]
    assert statuses.count("ok") == 1 and statuses.count("cached") == 2


def test_slurm_code_path_with_submitit_local(tmp_path):
    out = malak_run(tmp_path, "-m", "hydra/launcher=slurm_local", "seed=0,1", *FAST)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [sweep] = sweep_dirs(tmp_path)
    assert len(list(sweep.glob("*/results.json"))) == 2
    assert (sweep / "report" / "report.md").exists()


def edgeai(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MALAK_CACHE_DIR=str(tmp_path / "cache"), COLUMNS="200")
    return subprocess.run([str(BIN / "edgeai"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def test_edgeai_commands_on_digits(tmp_path):
    common = ["--epochs", "1", "--set", "data.max_train=300"]
    train = edgeai(tmp_path, "train", *common)
    assert train.returncode == 0, train.stderr
    quant = edgeai(tmp_path, "quantize", "--mode", "static", *common)
    assert quant.returncode == 0, quant.stderr
    latest = max((tmp_path / "outputs").rglob("results.json"), key=lambda p: p.stat().st_mtime)
    nodes = json.loads(latest.read_text())["nodes"]
    assert nodes["train"]["status"] == "cached"  # the baseline from `edgeai train`
    assert nodes["ptq_static"]["status"] == "ok" and set(nodes) == {"data", "train", "ptq_static"}
    for args in (["prune", "--method", "structured", "--amount", "0.3"], ["distill", "--temperature", "2"],
                 ["export"], ["profile"], ["evaluate"], ["quantize", "--mode", "qat"]):
        plan = edgeai(tmp_path, *args, *common, "--plan")
        assert plan.returncode == 0, plan.stderr
        assert "plan" in plan.stdout


def test_edgeai_overrides_map_onto_config():
    from malak_pipe.cli.edgeai import build_parser, to_overrides

    args = build_parser().parse_args(["prune", "--method", "magnitude", "--amount", "0.7", "--data", "fashion_mnist"])
    assert to_overrides(args) == [
        "pipeline=compress", "run.only=[prune_magnitude]", "name=edgeai_prune", "data=fashion_mnist",
        "stage.prune_magnitude.sparsity=0.7",
    ]
