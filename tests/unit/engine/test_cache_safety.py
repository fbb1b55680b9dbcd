"""The cache protects itself: read-only objects, verify, gc, a full disk, parallel processes."""

from __future__ import annotations

import errno
import fcntl
import json
import multiprocessing as mp
import os
import stat
from pathlib import Path

import pytest

from malak_pipe.cli.cache import main as cache_main
from malak_pipe.cli.console import RunConsole
from malak_pipe.engine import cache_tools, store
from malak_pipe.engine.app import execute
from malak_pipe.engine.config import parse_run_config
from malak_pipe.engine.store import Cache
from tests.unit.engine import toy_stages  # noqa: F401  (registers the toy stages)
from tests.unit.engine.test_runner import PIPE


def cache_dir() -> Path:
    return Path(os.environ["MALAK_CACHE_DIR"])


def run(tmp_path: Path, name: str, **cache: object) -> tuple[int, dict]:
    cfg = parse_run_config({"pipeline": PIPE, "run": {"live": False}, "cache": cache})
    code = execute(cfg, {}, tmp_path / name, [], RunConsole(live=False))
    path = tmp_path / name / "results.json"
    return code, json.loads(path.read_text())["nodes"] if path.exists() else {}


def objects() -> list[Path]:
    return sorted(p for p in (cache_dir() / "objects").rglob("*") if p.is_file() and p.name != store.MANIFEST)


def test_objects_are_read_only_and_run_dirs_share_them_by_default(tmp_path):
    run(tmp_path, "a")
    for path in objects():
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    run_file = tmp_path / "a" / "add" / "json.out.json"
    cached = next(p for p in objects() if p.name == run_file.name and json.loads(p.read_text())["value"] == 12)
    assert run_file.stat().st_ino == cached.stat().st_ino  # one read-only inode, no copy
    assert stat.S_IMODE(run_file.stat().st_mode) == 0o444


def test_link_copy_gives_run_dirs_private_writable_files(tmp_path):
    run(tmp_path, "a", link="copy")
    _, second = run(tmp_path, "b", link="copy")
    assert second["add"]["status"] == "cached"
    mine = tmp_path / "b" / "add" / "json.out.json"
    cached = next(p for p in objects() if p.name == mine.name and json.loads(p.read_text())["value"] == 12)
    assert mine.stat().st_ino != cached.stat().st_ino
    assert stat.S_IMODE(mine.stat().st_mode) == 0o644
    mine.write_text('{"value": -1}')  # editing the run dir cannot reach the cache
    assert json.loads(cached.read_text()) == {"value": 12}
    _, third = run(tmp_path, "c", link="copy")
    assert third["add"]["status"] == "cached" and third["add"]["metrics"]["value"] == 12


def damage(path: Path, how: str) -> None:
    os.chmod(path, 0o644)
    data = path.read_bytes()
    path.write_bytes(data[:-3] if how == "truncate" else bytes([data[0] ^ 0x01]) + data[1:])


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_verify_finds_damage_quarantines_it_and_exits_1(tmp_path, capsys, how):
    run(tmp_path, "a")
    victim = objects()[0]
    damage(victim, how)
    with pytest.raises(SystemExit) as exited:
        cache_main(["--dir", str(cache_dir()), "verify"])
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "corrupted" in out and "1 corrupted" in out
    assert len(list((cache_dir() / "corrupted").iterdir())) == 1
    with pytest.raises(SystemExit) as clean:
        cache_main(["--dir", str(cache_dir()), "verify"])
    assert clean.value.code == 0
    _, again = run(tmp_path, "b")  # the damaged node is recomputed, the others reused
    assert sorted(r["status"] for r in again.values()).count("ok") == 1


def test_gc_dry_run_then_real_run_keeps_what_runs_use(tmp_path, capsys):
    run(tmp_path, "a")
    other = {**PIPE, "add": {**PIPE["add"], "config": {"amount": 5}}}
    cfg = parse_run_config({"pipeline": other, "run": {"live": False}})
    execute(cfg, {}, tmp_path / "other" / "b", [], RunConsole(live=False))
    before = len(list((cache_dir() / "objects").glob("*/*")))
    assert before == 5  # src shared; add and sink twice
    cache_main_ok(["--dir", str(cache_dir()), "gc", "--keep", str(tmp_path / "a")])
    assert "2 entries" in capsys.readouterr().out and len(list((cache_dir() / "objects").glob("*/*"))) == before
    cache_main_ok(["--dir", str(cache_dir()), "gc", "--keep", str(tmp_path / "a"), "--yes"])
    assert "deleted 2 entries" in capsys.readouterr().out
    assert len(list((cache_dir() / "objects").glob("*/*"))) == 3
    _, again = run(tmp_path, "c")
    assert {r["status"] for r in again.values()} == {"cached"}


def cache_main_ok(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cache_main(argv)
    assert exited.value.code == 0


def test_gc_never_deletes_an_entry_whose_lock_is_held(tmp_path):
    run(tmp_path, "a")
    cache = Cache(cache_dir())
    plan = cache_tools.plan_gc(cache, [], keep_seconds=0.0)
    held = plan.delete[0].key
    cache.lock_path(held).parent.mkdir(parents=True, exist_ok=True)
    with open(cache.lock_path(held), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another job computing or reading this key
        done = cache_tools.run_gc(cache, plan)
    assert done.busy == [held]
    assert cache.entry_dir(held).is_dir()
    assert len(done.delete) == len(plan.delete) - 1


def test_gc_needs_to_be_told_what_to_keep(tmp_path):
    run(tmp_path, "a")
    with pytest.raises(SystemExit) as exited:
        cache_main(["--dir", str(cache_dir()), "gc"])
    assert exited.value.code == 2


def test_a_full_disk_is_a_clear_failure_and_the_cache_stays_consistent(tmp_path, monkeypatch, capsys):
    real = store._place

    def full(src, dst, link):
        if Path(src).parent.name == "add":
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real(src, dst, link)

    monkeypatch.setattr(store, "_place", full)
    code, res = run(tmp_path, "a")
    assert code == 1
    assert res["add"]["status"] == "failed" and res["sink"]["status"] == "skipped"
    error = res["add"]["error"]
    assert "no space left on the device" in error and "bytes free" in error and "bytes needed" in error
    assert "tmp" in error  # names the path being written
    assert not list((cache_dir() / "tmp").iterdir())  # no half-built entry left
    monkeypatch.setattr(store, "_place", real)
    assert cache_tools.verify(Cache(cache_dir())).corrupted == []
    _, again = run(tmp_path, "b")
    assert again["src"]["status"] == "cached" and again["add"]["status"] == "ok"


def _compute(cache: str, out_dir: str, barrier) -> None:
    os.environ["MALAK_CACHE_DIR"] = cache
    from tests.unit.engine import toy_stages as ts  # noqa: F401

    barrier.wait()
    cfg = parse_run_config({"pipeline": PIPE, "run": {"live": False}})
    execute(cfg, {}, Path(out_dir), [])


def test_four_processes_on_one_key_leave_one_valid_entry_that_all_get(tmp_path):
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(4)
    shared = str(tmp_path / "shared")
    procs = [ctx.Process(target=_compute, args=(shared, str(tmp_path / f"r{i}"), barrier)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    results = [json.loads((tmp_path / f"r{i}" / "results.json").read_text())["nodes"] for i in range(4)]
    assert sorted(r["add"]["status"] for r in results) == ["cached", "cached", "cached", "ok"]
    assert {r["add"]["metrics"]["value"] for r in results} == {12}
    assert len(list((Path(shared) / "objects").glob("*/*"))) == 3
    assert not list((Path(shared) / "tmp").iterdir())
    assert cache_tools.verify(Cache(Path(shared))).corrupted == []
