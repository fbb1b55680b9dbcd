"""Files that are either whole or absent: atomic JSON writes and atomic output paths.

A process killed at any moment leaves at worst a ``.tmp-*`` entry beside the file it was
writing, never a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from malak_pipe.errors import DiskFull

TMP_PREFIX = ".tmp-"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n"
    with disk_full_named(path, len(text.encode())):
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """A temporary path with ``final``'s name, renamed onto ``final`` only if the block succeeds.

    The temporary path lives in a private directory beside ``final`` and has the same file
    name, because some writers record the name inside the file (torch.save names its zip
    archive after it): the bytes must not depend on where they were first written.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f"{TMP_PREFIX}{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    tmp = staging / final.name
    try:
        with disk_full_named(final):
            yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written at {tmp} for {final.name}")
        remove(final)
        os.replace(tmp, final)
    finally:
        remove(staging)


def remove(path: Path) -> None:
    """Delete a file or a directory tree, read-only files included; absent is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, onerror=_make_writable_and_retry)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _make_writable_and_retry(func: Any, target: str, _exc: Any) -> None:
    with contextlib.suppress(OSError):
        os.chmod(os.path.dirname(target) or ".", 0o755)
        os.chmod(target, 0o755 if os.path.isdir(target) else 0o644)
        func(target)


@contextlib.contextmanager
def disk_full_named(path: Path, needed: int | None = None) -> Iterator[None]:
    """Turn ENOSPC while writing ``path`` into :class:`DiskFull` naming the path and the space."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull.at(Path(exc.filename or path), needed) from None
