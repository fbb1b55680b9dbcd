"""The ray_cluster launcher for real: a local Ray head on 127.0.0.1, a small search through it
with the shared cache, the head stopped. Skipped with the reason where ray is not installed
(`make test` installs the [cluster] extra when it can); a failure under CI=true."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.e2e.test_cli import BIN

RAY = BIN / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    if not RAY.exists():
        reason = "ray is not installed (pip install -e '.[cluster]')"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    port = free_port()
    ray_tmp = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))  # Ray's socket paths must stay under 107 bytes
    env = dict(os.environ, RAY_TMPDIR=str(ray_tmp))
    start = [str(RAY), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"]
    out = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_search_runs_its_trials_on_a_ray_cluster(ray_head, tmp_path):
    env = dict(os.environ, RAY_ADDRESS=ray_head, MALAK_CACHE_DIR=str(tmp_path / "cache"), COLUMNS="200")
    command = [str(BIN / "malak-run"), "-m", "+experiment=fits_mcu_digits", "debug=smoke", "hydra/launcher=ray_cluster",
               "hydra.sweeper.n_trials=2", "hydra.sweeper.batch_size=2", "hydra.sweeper.sampler=random",
               f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((tmp_path / "sweep" / "report" / "search.json").read_text())
    assert len(summary["trials"]) == 2 and summary["states"]["error"] == 0, summary["counts"]
    for trial in summary["trials"]:
        assert Path(trial["run_dir"]).is_relative_to(tmp_path / "sweep")  # jobs ran in the launch directory
    entries = list((tmp_path / "cache" / "objects").glob("*/*"))
    assert entries, "the Ray jobs wrote the shared cache"
    data = [json.loads((tmp_path / "sweep" / str(i) / "results.json").read_text())["nodes"]["data"] for i in (0, 1)]
    assert {d["key"] for d in data} == {data[0]["key"]}  # one data entry, shared by both trials
