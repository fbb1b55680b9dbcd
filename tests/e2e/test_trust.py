"""The cache's promise through the real CLI: a rerun never redoes work and never returns a
stale result — after a code change, across clean runs, and after kill -9 at any stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli import BIN, malak_run, results_files

FIRMWARE_SMOKE = ("experiment=firmware_demo", "debug=smoke", "stage.sim_run.num_images=4")


def output_hashes(run_dir: Path) -> dict[str, dict[str, str]]:
    """node -> output -> sha256, from the run's result.json files."""
    found = {}
    for result in run_dir.glob("*/result.json"):
        res = json.loads(result.read_text())
        found[res["node"]] = {name: rec["sha256"] for name, rec in res["outputs"].items()}
    return found


def last_run(root: Path) -> Path:
    return results_files(root)[-1].parent


MODEL = """
import torch
from torch import nn

WIDTH = {width}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, WIDTH, 3, padding=1)
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean(dim=(2, 3)))
"""


def test_editing_a_factory_model_recomputes_train(tmp_path, monkeypatch):
    (tmp_path / "my_model.py").write_text(MODEL.format(width=40))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    args = ("+experiment=smoke", "model.name=factory", "model.factory=my_model:Net")
    first = malak_run(tmp_path, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    train1 = json.loads(results_files(tmp_path)[-1].read_text())["nodes"]["train"]
    assert train1["status"] == "ok" and train1["metrics"]["params"] == 40 * 9 + 40 + 40 * 10 + 10

    (tmp_path / "my_model.py").write_text(MODEL.format(width=48))
    plan = malak_run(tmp_path, *args, "run.plan=true")
    assert "user:my_model.py" in plan.stdout.replace("\n", "")
    second = malak_run(tmp_path, *args)
    assert second.returncode == 0, second.stderr
    train2 = json.loads(results_files(tmp_path)[-1].read_text())["nodes"]["train"]
    assert train2["status"] == "ok", "a stale result: train was taken from the cache after the model changed"
    assert train2["metrics"]["params"] == 48 * 9 + 48 + 48 * 10 + 10
    third = malak_run(tmp_path, *args)
    assert json.loads(results_files(tmp_path)[-1].read_text())["nodes"]["train"]["status"] == "cached"
    assert third.returncode == 0


def test_two_clean_runs_write_byte_identical_artifacts(tmp_path):
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        out = malak_run(tmp_path / name, *FIRMWARE_SMOKE, cache=tmp_path / name / "cache")
        assert out.returncode == 0, out.stdout + out.stderr
        runs.append(output_hashes(last_run(tmp_path / name)))
    assert set(runs[0]) == {"data", "train", "export_onnx", "quantize_onnx", "codegen", "firmware_build", "sim_run"}
    assert runs[0] == runs[1]


def launch(cwd: Path, cache: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, MALAK_CACHE_DIR=str(cache), COLUMNS="200")
    return subprocess.Popen(
        [str(BIN / "malak-run"), *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )


def run_until_killed(cwd: Path, cache: Path, node: str, delay: float) -> str:
    """Start the pipeline and SIGKILL its process group ``delay`` seconds after ``node``
    starts; returns what the run printed until then."""
    proc = launch(cwd, cache, *FIRMWARE_SMOKE)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(f"[{node}] running"):
            time.sleep(delay)
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return "".join(seen)


NODES = ("data", "train", "export_onnx", "quantize_onnx", "codegen", "firmware_build", "sim_run")


@pytest.mark.slow
def test_kill_9_during_each_stage_then_rerun_matches_an_uninterrupted_run(tmp_path):
    """Each launch resumes the run killed before it (the node killed last time is recomputed,
    the ones before it come from the cache) and is itself killed in the next node."""
    clean = malak_run(tmp_path, *FIRMWARE_SMOKE, cache=tmp_path / "clean-cache")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    expected = output_hashes(last_run(tmp_path))
    cache = tmp_path / "killed-cache"
    for index, node in enumerate(NODES):
        printed = run_until_killed(tmp_path, cache, node, delay=0.05)
        assert f"[{node}] running" in printed, printed
        assert f"[{node}] ok" not in printed  # killed before the node finished
        for earlier in NODES[: max(index - 1, 0)]:
            assert f"[{earlier}] cached" in printed, printed
        if index:
            assert f"[{NODES[index - 1]}] ok" in printed, printed  # the node killed last time, recomputed
    final = malak_run(tmp_path, *FIRMWARE_SMOKE, cache=cache)
    assert final.returncode == 0, final.stdout + final.stderr
    nodes = json.loads(results_files(tmp_path)[-1].read_text())["nodes"]
    assert nodes["sim_run"]["status"] == "ok" and all(nodes[n]["status"] == "cached" for n in NODES[:-1])
    assert output_hashes(last_run(tmp_path)) == expected
    assert not list((cache / "tmp").iterdir())  # staging left by the kills was cleaned up
