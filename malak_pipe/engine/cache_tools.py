"""What ``malak-cache`` does to a cache directory: describe it, verify it, collect garbage.

Every function works on the layout of :mod:`malak_pipe.engine.store` and never touches an
entry whose key's lock another process holds (it is being computed or read right now).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from malak_pipe.artifacts import size_of
from malak_pipe.engine.atomic import remove
from malak_pipe.engine.results import RESULT_FILE
from malak_pipe.engine.store import MANIFEST, Cache, CacheCorrupted, verify_entry
from malak_pipe.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_duration(text: str) -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"`` or a bare number of days, in seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(f"'{text}' is not a duration", path="--older-than", hint="write e.g. 30d, 12h, 90m or 2w")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass
class Entry:
    key: str
    path: Path
    stage: str
    bytes: int
    last_used: float


def entries(cache: Cache) -> Iterator[Entry]:
    """Every entry directory under ``objects/`` (manifest read, outputs not verified)."""
    objects = cache.root / "objects"
    if not objects.is_dir():
        return
    for entry_dir in sorted(objects.glob("*/*")):
        try:
            manifest = json.loads((entry_dir / MANIFEST).read_text())
        except (OSError, ValueError):
            manifest = {}
        stage, used = manifest.get("stage", "?"), entry_dir.stat().st_mtime
        yield Entry(entry_dir.name, entry_dir, stage, size_of(entry_dir), used)


@contextlib.contextmanager
def unlocked(cache: Cache, key: str) -> Iterator[bool]:
    """Whether nobody holds ``key``'s lock; while True, this process holds it."""
    path = cache.lock_path(key)
    if not path.exists():
        yield True
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def info(cache: Cache) -> dict:
    """Entries and bytes, in all and by stage; leftovers of killed jobs; quarantined entries."""
    by_stage: dict[str, dict[str, int]] = {}
    total = count = 0
    for entry in entries(cache):
        row = by_stage.setdefault(entry.stage, {"entries": 0, "bytes": 0})
        row["entries"] += 1
        row["bytes"] += entry.bytes
        total += entry.bytes
        count += 1
    return {
        "root": str(cache.root),
        "entries": count,
        "bytes": total,
        "by_stage": dict(sorted(by_stage.items())),
        "staging_leftovers": _count(cache.root / "tmp"),
        "quarantined": _count(cache.root / "corrupted"),
    }


def _count(folder: Path) -> int:
    return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0


@dataclass
class VerifyReport:
    checked: int = 0
    corrupted: list[tuple[str, str, str]] = field(default_factory=list)  # key, reason, moved to
    busy: list[str] = field(default_factory=list)


def verify(cache: Cache) -> VerifyReport:
    """Re-hash every entry; move damaged ones to ``corrupted/`` (a later run recomputes them)."""
    report = VerifyReport()
    for entry in list(entries(cache)):
        with unlocked(cache, entry.key) as free:
            if not free:
                report.busy.append(entry.key)
                continue
            report.checked += 1
            try:
                verify_entry(entry.key, entry.path)
            except CacheCorrupted as exc:
                aside = cache.quarantine(entry.path)
                report.corrupted.append((entry.key, str(exc), str(aside)))
    return report


def referenced_keys(run_dirs: list[Path]) -> set[str]:
    """Cache keys named by the result.json files under these run (or sweep) directories."""
    keys: set[str] = set()
    for root in run_dirs:
        if not root.exists():
            raise ConfigError(f"no such run directory: {root}", path="--keep", hint="pass run or sweep directories")
        for result in root.rglob(RESULT_FILE):
            with contextlib.suppress(OSError, ValueError):
                key = json.loads(result.read_text()).get("key")
                if key:
                    keys.add(key)
    return keys


@dataclass
class GcPlan:
    delete: list[Entry] = field(default_factory=list)
    keep: int = 0
    busy: list[str] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(entry.bytes for entry in self.delete)


def plan_gc(cache: Cache, keep_runs: list[Path], keep_seconds: float | None, now: float | None = None) -> GcPlan:
    """What gc removes: entries neither referenced by ``keep_runs`` nor used within ``keep_seconds``."""
    if not keep_runs and keep_seconds is None:
        raise ConfigError(
            "say what to keep: --keep RUN_DIR (entries those runs use) and/or --older-than AGE",
            path="malak-cache gc",
            hint="e.g. malak-cache gc --keep outputs/runs --older-than 30d",
        )
    now = time.time() if now is None else now
    keep_keys = referenced_keys(keep_runs)
    plan = GcPlan()
    for entry in entries(cache):
        recent = keep_seconds is not None and now - entry.last_used < keep_seconds
        if entry.key in keep_keys or recent:
            plan.keep += 1
        else:
            plan.delete.append(entry)
    tmp = cache.root / "tmp"
    plan.leftovers = sorted(tmp.iterdir()) if tmp.is_dir() else []
    return plan


def run_gc(cache: Cache, plan: GcPlan) -> GcPlan:
    """Delete what ``plan`` lists, skipping any entry whose lock a running job holds."""
    done = GcPlan(keep=plan.keep)
    for entry in plan.delete:
        with unlocked(cache, entry.key) as free:
            if not free:
                done.busy.append(entry.key)
                continue
            remove(entry.path)
            done.delete.append(entry)
            with contextlib.suppress(OSError):
                cache.lock_path(entry.key).unlink()
    for leftover in plan.leftovers:
        key = leftover.name.rsplit("-", 1)[0]
        with unlocked(cache, key) as free:
            if free:
                remove(leftover)
                done.leftovers.append(leftover)
    return done
