"""The content-addressed cache of stage outputs.

Layout (default ``outputs/cache``; ``cache.dir`` or ``MALAK_CACHE_DIR``)::

    objects/<key[:2]>/<key>/manifest.json     what the entry holds: sha256 of each output, key parts
    objects/<key[:2]>/<key>/<output files>    read-only
    index/<stage>/<node>.json                 the key parts of the last entry of that node
    locks/<key>.lock                          held while one process computes the key
    tmp/<key>-<id>/                           an entry being built (removed, or stale after a kill)
    corrupted/                                entries that failed verification, moved aside

An entry is built in ``tmp/`` and renamed into place, so it is either whole or absent.
Reading verifies every output's sha256: a corrupted or truncated entry is moved aside,
reported and recomputed, never used. While one process computes a key, others that need the
same key wait on its lock and then take its entry, so a parallel sweep trains a shared
baseline once. Objects are read-only; run directories get hard links to them (``link:
hardlink``, the default: the same read-only inodes) or private writable copies (``link:
copy``), so editing a file of a run directory never reaches the cache unnoticed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from malak_pipe.artifacts import sha256_of, size_of
from malak_pipe.engine.atomic import disk_full_named, remove, write_json_atomic

MANIFEST = "manifest.json"
LinkMode = Literal["hardlink", "copy"]
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH


@dataclass
class OutputRecord:
    file: str
    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path) -> OutputRecord:
        return cls(file=path.name, sha256=sha256_of(path), bytes=size_of(path))


@dataclass
class CacheEntry:
    key: str
    path: Path
    manifest: dict[str, Any]

    @property
    def outputs(self) -> dict[str, OutputRecord]:
        return {name: OutputRecord(**rec) for name, rec in self.manifest["outputs"].items()}


class CacheCorrupted(Exception):
    """An entry failed verification; the message says which file and how."""


def verify_entry(key: str, entry_dir: Path) -> CacheEntry:
    """The entry at ``entry_dir`` if its manifest is for ``key`` and every output matches its sha256."""
    try:
        manifest = json.loads((entry_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise CacheCorrupted(f"unreadable manifest: {exc}") from None
    if manifest.get("key") != key:
        raise CacheCorrupted("manifest is for another key")
    for name, rec in manifest.get("outputs", {}).items():
        path = entry_dir / rec["file"]
        if not path.exists():
            raise CacheCorrupted(f"output '{name}' ({rec['file']}) is missing")
        if size_of(path) != rec["bytes"]:
            raise CacheCorrupted(f"output '{name}' ({rec['file']}) has {size_of(path)} bytes, not {rec['bytes']}")
        if sha256_of(path) != rec["sha256"]:
            raise CacheCorrupted(f"output '{name}' ({rec['file']}) does not match its sha256")
    return CacheEntry(key, entry_dir, manifest)


class Cache:
    """The content-addressed store of stage outputs."""

    def __init__(self, root: Path, enabled: bool = True, link: LinkMode = "hardlink"):
        self.root = root
        self.enabled = enabled
        self.link = link
        self.notes: list[str] = []

    @property
    def memo_dir(self) -> Path | None:
        """Where small per-machine memos live (tool versions); None when the cache is off."""
        return self.root if self.enabled else None

    def entry_dir(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"{key}.lock"

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the key's lock while computing it (no-op when the cache is disabled).

        flock is released by the kernel when its process dies, so a killed job never leaves
        a lock that blocks the next one."""
        if not self.enabled:
            yield
            return
        path = self.lock_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def manifest(self, key: str) -> dict[str, Any] | None:
        """The manifest of an entry without verifying its outputs (plan mode)."""
        path = self.entry_dir(key) / MANIFEST
        if not (self.enabled and path.is_file()):
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return None

    def previous(self, stage: str, node: str) -> dict[str, Any] | None:
        """The key parts of the last entry stored for ``node`` of ``stage`` (to explain a miss)."""
        path = self.root / "index" / stage / f"{node}.json"
        try:
            return json.loads(path.read_text()).get("parts")
        except (OSError, ValueError):
            return None

    def lookup(self, key: str) -> CacheEntry | None:
        """The verified entry for ``key``, or None (a corrupted entry is moved aside)."""
        if not self.enabled:
            return None
        entry_dir = self.entry_dir(key)
        if not entry_dir.exists():
            return None
        try:
            entry = verify_entry(key, entry_dir)
        except CacheCorrupted as exc:
            self.quarantine(entry_dir)
            self.notes.append(f"cache entry {key[:12]} was corrupted ({exc}); it was moved aside and recomputed")
            return None
        with contextlib.suppress(OSError):
            os.utime(entry_dir)  # last use, for `malak-cache gc --older-than`
        return entry

    def quarantine(self, entry_dir: Path) -> Path:
        """Move a damaged entry to ``corrupted/`` (kept for inspection, never read)."""
        aside = self.root / "corrupted" / f"{entry_dir.name}-{uuid.uuid4().hex[:6]}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(entry_dir, aside)
        except OSError:
            remove(entry_dir)
        return aside

    def put(self, key: str, outputs: dict[str, Path], record: dict[str, Any]) -> CacheEntry | None:
        """Store ``outputs`` under ``key`` atomically (call it holding the key's lock); returns
        the entry now in the cache. ``record["key_parts"]`` also becomes the node's index entry."""
        if not self.enabled:
            return None
        self._remove_stale_staging(key)
        final = self.entry_dir(key)
        staging = self.root / "tmp" / f"{key}-{uuid.uuid4().hex[:8]}"
        needed = sum(size_of(path) for path in outputs.values())
        try:
            with disk_full_named(staging, needed):
                staging.mkdir(parents=True)
                recs = {}
                for name, src in outputs.items():
                    _place(src, staging / src.name, self.link)
                    recs[name] = OutputRecord.of(staging / src.name).__dict__
                write_json_atomic(staging / MANIFEST, {"key": key, "outputs": recs, **record})
                _make_read_only(staging)
                final.parent.mkdir(parents=True, exist_ok=True)
                # If another process stored the same key first, the rename fails: its entry is as good.
                with contextlib.suppress(OSError):
                    os.rename(staging, final)
                self._index(record, key)
        finally:
            remove(staging)
        return self.lookup(key)

    def _index(self, record: dict[str, Any], key: str) -> None:
        parts = record.get("key_parts")
        if parts is not None and record.get("node"):
            path = self.root / "index" / parts["stage"] / f"{record['node']}.json"
            write_json_atomic(path, {"key": key, "parts": parts})

    def _remove_stale_staging(self, key: str) -> None:
        """Leftovers of a process killed while storing this key (we hold its lock: none is live)."""
        tmp = self.root / "tmp"
        if tmp.is_dir():
            for stale in tmp.glob(f"{key}-*"):
                remove(stale)

    def materialize(self, entry: CacheEntry, dest: Path) -> dict[str, Path]:
        """Place an entry's outputs in a node directory: read-only hard links, or writable copies."""
        dest.mkdir(parents=True, exist_ok=True)
        placed = {}
        for name, rec in entry.outputs.items():
            target = dest / rec.file
            remove(target)
            _place(entry.path / rec.file, target, self.link)
            placed[name] = target
        return placed


def _make_read_only(root: Path) -> None:
    """Files read-only; directories stay traversable and removable by their owner."""
    for path in [root, *root.rglob("*")]:
        if path.is_file():
            os.chmod(path, READ_ONLY)


def _place(src: Path, dst: Path, link: LinkMode) -> None:
    """A hard link (copy where the filesystem cannot link), or a private writable copy."""
    copy = _writable_copy if link == "copy" else _link_file
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=copy)
    else:
        copy(src, dst)


def _link_file(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _writable_copy(src: str | Path, dst: str | Path) -> None:
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
