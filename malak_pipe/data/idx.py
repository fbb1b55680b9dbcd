"""A reader for the IDX format of (Fashion-)MNIST, plain or gzip-compressed."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from malak_pipe.errors import DataError

# IDX type code -> big-endian numpy dtype
IDX_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(
            f"cannot read the IDX file: {exc}",
            path=str(path),
            hint="the file is damaged or truncated; download it again",
        ) from None


def read_idx(path: Path) -> np.ndarray:
    """The array stored in an IDX file (magic 0x0000TTDD: type TT, DD dimensions)."""
    data = _read_bytes(path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_DTYPES:
        raise DataError(
            f"not an IDX file (magic bytes {data[:4].hex() or 'missing'})",
            path=str(path),
            hint="expected e.g. train-images-idx3-ubyte.gz from Fashion-MNIST",
        )
    dtype = np.dtype(IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"truncated IDX header ({len(data)} bytes)", path=str(path))
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"IDX header says dims {list(dims)} ({expected} bytes of data) but the file has "
            f"{len(data) - header} bytes after the header",
            path=str(path),
            hint="the file is truncated or damaged; download it again",
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
