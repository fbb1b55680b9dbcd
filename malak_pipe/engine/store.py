"""Atomic files and the content-addressed stage cache.

Layout of the cache (default ``outputs/cache``; ``cache.dir`` or ``MALAK_CACHE_DIR``)::

    objects/<key[:2]>/<key>/manifest.json     what the entry holds, with sha256 of each output
    objects/<key[:2]>/<key>/<output files>
    locks/<key>.lock                          held while one process computes the key

An entry is built in a temporary directory and renamed into place, so it is either whole
or absent. Reading verifies every output's sha256: a corrupted or truncated entry is moved
aside, reported and recomputed, never used. While one process computes a key, others that
need the same key wait on its lock and then take its entry, so a parallel sweep trains a
shared baseline once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from malak_pipe.artifacts import sha256_of, size_of

MANIFEST = "manifest.json"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(obj, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path beside ``final``; renamed onto ``final`` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".tmp-{uuid.uuid4().hex[:8]}-{final.name}"
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written at {tmp} for {final.name}")
        _remove(final)
        os.replace(tmp, final)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


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


class Cache:
    """The content-addressed store of stage outputs."""

    def __init__(self, root: Path, enabled: bool = True):
        self.root = root
        self.enabled = enabled
        self.notes: list[str] = []

    def _entry_dir(self, key: str) -> Path:
        return self.root / "objects" / key[:2] / key

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the key's lock while computing it (no-op when the cache is disabled)."""
        if not self.enabled:
            yield
            return
        lock_dir = self.root / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{key}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def peek(self, key: str) -> bool:
        """Whether an entry exists (no verification; for plan mode)."""
        return self.enabled and (self._entry_dir(key) / MANIFEST).is_file()

    def manifest(self, key: str) -> dict[str, Any] | None:
        """The manifest of an entry without verifying its outputs (plan mode)."""
        path = self._entry_dir(key) / MANIFEST
        if not (self.enabled and path.is_file()):
            return None
        try:
            return json.loads(path.read_text())
        except ValueError:
            return None

    def lookup(self, key: str) -> CacheEntry | None:
        """The verified entry for ``key``, or None (a corrupted entry is moved aside)."""
        if not self.enabled:
            return None
        entry_dir = self._entry_dir(key)
        if not entry_dir.exists():
            return None
        try:
            entry = self._verify(key, entry_dir)
        except CacheCorrupted as exc:
            self._quarantine(entry_dir)
            self.notes.append(f"cache entry {key[:12]} was corrupted ({exc}); it was moved aside and recomputed")
            return None
        return entry

    def _verify(self, key: str, entry_dir: Path) -> CacheEntry:
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
            if size_of(path) != rec["bytes"] or sha256_of(path) != rec["sha256"]:
                raise CacheCorrupted(f"output '{name}' ({rec['file']}) does not match its sha256")
        return CacheEntry(key, entry_dir, manifest)

    def _quarantine(self, entry_dir: Path) -> None:
        aside = self.root / "corrupted" / f"{entry_dir.name}-{uuid.uuid4().hex[:6]}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(entry_dir, aside)
        except OSError:
            shutil.rmtree(entry_dir, ignore_errors=True)

    def put(self, key: str, outputs: dict[str, Path], record: dict[str, Any]) -> CacheEntry | None:
        """Store ``outputs`` under ``key`` atomically; returns the entry now in the cache."""
        if not self.enabled:
            return None
        final = self._entry_dir(key)
        staging = self.root / "tmp" / f"{key}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            recs = {}
            for name, src in outputs.items():
                _link_or_copy(src, staging / src.name)
                recs[name] = OutputRecord.of(staging / src.name).__dict__
            write_json_atomic(staging / MANIFEST, {"key": key, "outputs": recs, **record})
            final.parent.mkdir(parents=True, exist_ok=True)
            # If another process stored the same key first, the rename fails: its entry is as good.
            with contextlib.suppress(OSError):
                os.rename(staging, final)
        finally:
            _remove(staging)
        return self.lookup(key)

    def materialize(self, entry: CacheEntry, dest: Path) -> dict[str, Path]:
        """Place an entry's outputs in a node directory (hard links where possible)."""
        dest.mkdir(parents=True, exist_ok=True)
        placed = {}
        for name, rec in entry.outputs.items():
            target = dest / rec.file
            _remove(target)
            _link_or_copy(entry.path / rec.file, target)
            placed[name] = target
        return placed


def _link_or_copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=_link_file)
    else:
        _link_file(src, dst)


def _link_file(src: str | Path, dst: str | Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
