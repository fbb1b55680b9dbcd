"""The real CLI in a temporary directory: the smoke experiment, the cache, bad configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def malak_run(
    tmp_path: Path, *args: str, cache: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ, MALAK_CACHE_DIR=str(cache or tmp_path / "cache"), COLUMNS="200", **(env or {}))
    return subprocess.run(
        [str(BIN / "malak-run"), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


def results_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outputs").rglob("results.json")) if (tmp_path / "outputs").exists() else []


def test_smoke_runs_then_is_entirely_cached(tmp_path):
    first = malak_run(tmp_path, "+experiment=smoke")
    assert first.returncode == 0, first.stdout + first.stderr
    [res_file] = results_files(tmp_path)
    res = json.loads(res_file.read_text())
    train = res["nodes"]["train"]
    assert train["stage"] == "train" and train["status"] == "ok"
    assert 0.5 < train["metrics"]["test_top1"] <= 1.0  # one epoch of SimpleCNN on digits
    assert train["metrics"]["params"] > 0
    node_result = json.loads((res_file.parent / "train" / "result.json").read_text())
    assert node_result["inputs"]["data"]["ref"] == "data.dataset"
    assert node_result["outputs"]["model"]["sha256"]
    second = malak_run(tmp_path, "+experiment=smoke")
    assert second.returncode == 0, second.stderr
    latest = max(results_files(tmp_path), key=lambda p: p.stat().st_mtime)
    assert {n["status"] for n in json.loads(latest.read_text())["nodes"].values()} == {"cached"}


def test_help_and_cfg_job(tmp_path):
    help_out = malak_run(tmp_path, "--help")
    assert help_out.returncode == 0 and "malak-run" in help_out.stdout and "experiment" in help_out.stdout
    cfg = malak_run(tmp_path, "--cfg", "job", "+experiment=smoke")
    assert cfg.returncode == 0 and "pipeline:" in cfg.stdout


def test_plan_mode_runs_nothing(tmp_path):
    out = malak_run(tmp_path, "+experiment=smoke", "run.plan=true")
    assert out.returncode == 0, out.stderr
    assert "will run" in out.stdout
    assert results_files(tmp_path) == []


BAD_CONFIGS = [
    (["stage.train.epochs=abc"], "stage.train.epochs"),
    (["pipeline.train.stage=nonexistent"], "unknown stage 'nonexistent'"),
    (["pipeline.train.inputs.data=ghost.dataset"], "unknown node 'ghost'"),
    (["pipeline.train.inputs.data=data.nothing"], "no output 'nothing'"),
    (["+pipeline.train.inputs.extra=data.dataset"], "has no input 'extra'"),
    (["seed=abc"], "seed"),
    (["+bogus=1"], "bogus: unknown key"),
    (["data=nonexistent"], "nonexistent"),
    (["stage.train.epochs=0"], "stage.train.epochs"),
]


@pytest.mark.parametrize(("overrides", "words"), BAD_CONFIGS, ids=lambda v: str(v))
def test_bad_config_exit_2_clear_message_no_result(tmp_path, overrides, words):
    out = malak_run(tmp_path, "+experiment=smoke", *overrides)
    assert out.returncode == 2, out.stdout + out.stderr
    assert words in out.stderr
    assert "Traceback" not in out.stderr
    assert results_files(tmp_path) == []


COMPRESSION_BAD_CONFIGS = [
    (["stage.prune_magnitude.sparsity=1.5"], "stage.prune_magnitude.sparsity"),
    (["stage.prune_magnitude.sparsity=1.0"], "stage.prune_magnitude.sparsity"),
    (["stage.prune_structured.ratio=-0.1"], "stage.prune_structured.ratio"),
    (["stage.ptq_static.backend=arm"], "stage.ptq_static.backend"),
    (["pipeline.distill.inputs.teacher=data.dataset"], "takes torch_model or torch_model_int8 but 'data.dataset'"),
]


@pytest.mark.parametrize(("overrides", "words"), COMPRESSION_BAD_CONFIGS, ids=lambda v: str(v))
def test_bad_compression_config_fails_before_running(tmp_path, overrides, words):
    out = malak_run(tmp_path, "experiment=compress_demo", *overrides)
    assert out.returncode == 2, out.stdout + out.stderr
    assert words in out.stderr
    assert results_files(tmp_path) == []


def test_chain_prune_distill_qat_names_its_lineage(tmp_path):
    out = malak_run(tmp_path, "experiment=combined", "debug=smoke")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [res_file] = results_files(tmp_path)
    run_dir = res_file.parent

    def node(name):
        return json.loads((run_dir / name / "result.json").read_text())

    qat, distill, prune, train = node("qat"), node("distill"), node("prune_structured"), node("train")
    assert qat["inputs"]["model"]["ref"] == "distill.model"
    assert qat["inputs"]["model"]["sha256"] == distill["outputs"]["model"]["sha256"]
    assert distill["inputs"]["student"]["sha256"] == prune["outputs"]["model"]["sha256"]
    assert distill["inputs"]["teacher"]["sha256"] == train["outputs"]["model"]["sha256"]
    assert prune["inputs"]["model"]["sha256"] == train["outputs"]["model"]["sha256"]
    assert qat["metrics"]["params"] < train["metrics"]["params"]  # the pruned architecture carried through
