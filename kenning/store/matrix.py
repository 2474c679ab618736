"""A matrix of vectors as one file that readers memory-map: the SQLite store's cache of its
vectors beside the database, stamped with the state of the database it reflects."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

#: bytes at the end of a matrix file that say which state of the database it reflects
STAMP_BYTES = 64


def write_matrix(
    path: Path,
    stamp: str,
    count: int,
    dim: int,
    blocks: Iterable[tuple[np.ndarray, np.ndarray]],
) -> None:
    """Write (ids, float32 rows) blocks as one file that ``read_matrix`` memory-maps.

    The layout is a ``.npy`` file of the (count, dim) matrix (``np.load`` reads it as is),
    then the ids as int64, then ``stamp`` padded to 64 bytes. Written block by block to a
    temporary file and renamed into place, so neither the matrix nor a half-written file is
    ever what a reader sees.
    """
    if len(stamp.encode()) > STAMP_BYTES:
        raise ValueError(f"stamp too long: {stamp!r}")
    tmp = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.tmp")
    ids = np.empty(count, dtype=np.int64)
    done = 0
    with open(tmp, "wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": (count, dim)}
        np.lib.format.write_array_header_1_0(f, header)
        for block_ids, rows in blocks:
            n = len(block_ids)
            if done + n > count or (n and rows.shape[1] != dim):
                raise ValueError("the blocks do not match the declared shape")
            f.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
            ids[done : done + n] = block_ids
            done += n
        if done != count:
            raise ValueError(f"expected {count} rows, got {done}")
        f.write(ids.astype("<i8").tobytes())
        f.write(stamp.encode().ljust(STAMP_BYTES, b"\0"))
    os.replace(tmp, path)


def read_matrix(path: Path, stamp: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, read-only memory-mapped matrix) from ``write_matrix``'s file, or None when the
    file is missing, damaged, or reflects another ``stamp``."""
    try:
        with open(path, "rb") as f:
            f.seek(-STAMP_BYTES, os.SEEK_END)
            if f.read(STAMP_BYTES).rstrip(b"\0").decode() != stamp:
                return None
        matrix = np.load(path, mmap_mode="r")
        if not isinstance(matrix, np.memmap) or matrix.ndim != 2 or matrix.dtype != np.float32:
            return None
        count = matrix.shape[0]
        end = matrix.offset + matrix.nbytes
        if path.stat().st_size != end + 8 * count + STAMP_BYTES:
            return None
        ids = np.fromfile(path, dtype="<i8", count=count, offset=end).astype(np.int64)
        return ids, matrix
    except (OSError, ValueError, UnicodeDecodeError):
        return None
