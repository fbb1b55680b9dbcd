"""A pipeline from Python: malak_pipe.run(overrides) composes with Hydra and runs the same engine."""

from __future__ import annotations

import subprocess
import sys

import pytest

import malak_pipe
from malak_pipe.errors import ConfigError

SMOKE = ["+experiment=smoke", "data.max_train=800"]


def test_import_stays_light():
    code = "import sys, malak_pipe; print(sorted(m for m in ('torch', 'hydra', 'omegaconf') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(malak_pipe.run) and malak_pipe.RunResult.__name__ == "RunResult"


def test_run_returns_the_results_and_shares_the_cache(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = malak_pipe.run(SMOKE)
    assert first.ok and first.run_dir.parent == tmp_path / "outputs" / "runs" / "smoke"
    assert 0.5 < first["train"]["test_top1"] <= 1.0 and first["data"]["n_train"] == 800
    assert (first.run_dir / "results.json").is_file() and (first.run_dir / "run.json").is_file()
    again = malak_pipe.run(SMOKE, run_dir=tmp_path / "again")
    assert again.run_dir == tmp_path / "again"
    assert {node["status"] for node in again.nodes.values()} == {"cached"}
    assert again["train"]["test_top1"] == first["train"]["test_top1"]
    plan = malak_pipe.run([*SMOKE, "run.plan=true"], run_dir=tmp_path / "plan")
    assert plan.ok and plan.nodes == {} and not (tmp_path / "plan").exists()
    with pytest.raises(KeyError, match="no node 'qat'"):
        first["qat"]


def test_bad_overrides_raise_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="stage.train.epochs"):
        malak_pipe.run(["+experiment=smoke", "stage.train.epochs=abc"])
    with pytest.raises(ConfigError, match="a sweep"):
        malak_pipe.run(["+experiment=smoke", "seed=0,1"])
    with pytest.raises(ConfigError, match="cannot compose"):
        malak_pipe.run(["data=nonexistent"])
    assert not (tmp_path / "outputs").exists()
