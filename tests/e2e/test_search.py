"""The "fits my MCU" search through the real CLI, at toy size on digits: trials measured on the
simulated target, infeasible ones recorded, the front and best.yaml written, best.yaml
reproducing the pick from the cache, and a killed search resumed to its trial budget."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_cli import BIN

SEARCH = ("-m", "+experiment=fits_mcu_digits", "debug=smoke", "hydra/launcher=local", "hydra.sweeper.batch_size=2",
          "hydra.sweeper.sampler=random")


def command(sweep: Path, trials: int, seed: int) -> list[str]:
    return [str(BIN / "malak-run"), *SEARCH, f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.seed={seed}",
            f"hydra.sweep.dir={sweep}"]


def env(cache: Path) -> dict[str, str]:
    return dict(os.environ, MALAK_CACHE_DIR=str(cache), COLUMNS="200", MALAK_JOBS="2")


def finished_trials(db: Path) -> int:
    """Finished trials in the study database; 0 while Optuna is still creating it (the file can
    exist before its tables do, or be locked by the writer)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            query = "SELECT COUNT(*) FROM trials WHERE state IN ('COMPLETE', 'PRUNED', 'FAIL')"
            return con.execute(query).fetchone()[0]
    except sqlite3.OperationalError:  # "no such table" or "database is locked"
        return 0


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    """A search of 4 trials, killed (SIGKILL to its process group) once 2 have finished, then
    resumed with the same command: the report the other tests read is the resumed one's. Seed 4
    of the random sampler draws width 1.0 by QAT (infeasible before training) and width 0.5 by
    the mixed route first, so both run before the kill."""
    root = tmp_path_factory.mktemp("search")
    sweep = root / "sweep"
    proc = subprocess.Popen(command(sweep, 4, 4), cwd=root, env=env(root / "cache"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while finished_trials(sweep / "study.db") < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)
    killed_after = finished_trials(sweep / "study.db")
    out = subprocess.run(command(sweep, 4, 4), cwd=root, env=env(root / "cache"), capture_output=True,
                         text=True, timeout=900)
    return root, out, killed_after


def test_a_tiny_search_measures_trials_on_target_and_writes_the_front(search):
    root, out, _ = search
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = json.loads((root / "sweep" / "report" / "search.json").read_text())
    states = summary["states"]
    assert len(summary["trials"]) == 4 and states["error"] == 0, summary["counts"]
    assert states["infeasible"] >= 1 and states["complete"] >= 1, summary["counts"]
    infeasible = [t for t in summary["trials"] if t["state"] == "infeasible"]
    for trial in infeasible:  # before training from the architecture, else (mixed bits) at the firmware's budget check
        before = trial["params"]["model.width_mult"] == 1.0 and "fit_check" in trial["reason"]
        mixed = trial["params"]["route"] == "mixed" and "firmware_build" in trial["reason"]
        assert before or mixed, trial
    assert summary["front"] and all(t["feasible"] for t in summary["front"])
    pick = summary["pick"]
    assert pick["metrics"]["firmware_build.flash_bytes"] <= 65536
    assert pick["metrics"]["firmware_build.ram_bytes"] <= 16384
    assert pick["test"]["bit_exact_rate"] == 1.0 and pick["test"]["test_top1_on_target"] is not None
    for plot in ("search_flash.png", "search_ram.png", "search_instructions.png"):
        assert (root / "sweep" / "report" / plot).stat().st_size > 0
    assert "malak-search:" in out.stdout and "+experiment=best" in out.stdout


def test_best_yaml_reproduces_the_pick_from_the_cache(search):
    root, _, _ = search
    summary = json.loads((root / "sweep" / "report" / "search.json").read_text())
    argv = summary["reproduce"].split()
    out = subprocess.run([str(BIN / argv[0]), *argv[1:], f"hydra.run.dir={root / 'best'}"], cwd=root,
                         env=env(root / "cache"), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    nodes = json.loads((root / "best" / "results.json").read_text())["nodes"]
    ran = {n: r["status"] for n, r in nodes.items() if r["status"] not in ("cached", "skipped")}
    assert ran == {}, ran  # every node of the pick is already in the cache
    assert nodes["sim_run"]["metrics"]["top1"] == summary["pick"]["values"][0]


def test_the_killed_search_resumed_to_its_trial_budget(search):
    root, out, killed_after = search
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert 2 <= killed_after < 4  # the kill landed mid-search
    summary = json.loads((root / "sweep" / "report" / "search.json").read_text())
    assert len(summary["trials"]) == 4  # the budget counts the trials of the killed session
    assert {t["number"] for t in summary["trials"]} >= set(range(killed_after))


def test_the_mixed_route_puts_layers_at_4_bits_down_to_the_firmware(tmp_path):
    """A trial of route ``mixed`` (its overrides read from the experiment's search space) builds
    firmware whose weights are partly 4-bit, bit-exact on target, under the average bit-width."""
    from hydra import compose, initialize_config_module

    from tests.e2e.test_cli import malak_run

    with initialize_config_module(config_module="malak_pipe.conf", version_base="1.3"):
        space = compose("config", ["experiment=fits_mcu_digits"], return_hydra_config=True).hydra.sweeper.params
    route = [str(o) for o in space.route.choices.mixed]
    out = malak_run(tmp_path, "+experiment=fits_mcu_digits", "debug=smoke", *route,
                    "stage.mixed_precision.average_bits=5.0")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    [results] = list((tmp_path / "outputs").rglob("results.json"))
    nodes = json.loads(results.read_text())["nodes"]
    assert nodes["ptq_static"]["status"] == nodes["qat"]["status"] == "skipped"
    mixed = nodes["mixed_precision"]["metrics"]
    assert mixed["four_bit_layers"] and mixed["average_weight_bits"] <= 5.0
    [memory] = (results.parent / "firmware_build").rglob("memory.json")
    bits = [layer.get("weight_bits") for layer in json.loads(memory.read_text())["layers"]]
    assert bits.count(4) == len(mixed["four_bit_layers"]), bits  # one kernel call per 4-bit layer
    assert nodes["sim_run"]["metrics"]["bit_exact_rate"] == 1.0
