"""Files written so that a reader never sees half of one, and the integer version folders.

- ``atomic_write_text(path, text)`` / ``atomic_write_bytes(path, data)``: write a temporary file
  in the same folder (``.<name>.tmp-<pid>-<random>``), flush and fsync it, then rename it over
  ``path`` (``os.replace``: atomic on POSIX, and on Windows within one volume). A reader sees the
  old file or the new one, never a part; a crash leaves at most a stray ``.tmp-`` file, which
  readers ignore (its name is not the target's, nor a version number).
- ``versions(root)``: the integer version folders under ``root`` (``models/<name>/1``, ``2``, ...),
  oldest first; ``newest(path)``: the highest one. Only canonical names count (``7``, not ``07``,
  ``+7``, ``7.bak`` or ``.tmp-7-123``), so work in progress is never taken for a version.

Standard library only: training/, service/, bench/ and reliability/ all import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

__all__ = [
    "VERSION_NAME",
    "atomic_write_bytes",
    "atomic_write_text",
    "is_version_name",
    "newest",
    "sha256_file",
    "versions",
]

VERSION_NAME = re.compile(r"0|[1-9][0-9]{0,17}")  # a plain integer; 18 digits keep it an int64


def is_version_name(name: str) -> bool:
    """``"12"`` -> True; ``"012"``, ``"12.bak"``, ``".tmp-12-99"``, ``"latest"`` -> False."""
    return VERSION_NAME.fullmatch(name) is not None


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (temporary file in the same folder, fsync, rename).

    The folder must exist. Returns ``path`` as a Path. On any error the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_folder(path.parent)
    return path


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """``atomic_write_bytes`` for text (UTF-8 unless told otherwise)."""
    return atomic_write_bytes(path, text.encode(encoding))


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform opens folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def versions(root: str | os.PathLike[str]) -> list[int]:
    """Integer version folders under ``root``, oldest first; ``[]`` if ``root`` is not a folder.

    Files, temporary folders (``.tmp-3-123``) and other names (``latest``, ``04``) are ignored.
    """
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            if is_version_name(entry.name) and entry.is_dir():
                found.append(int(entry.name))
        except OSError:  # vanished or unreadable while listing
            continue
    return sorted(found)


def newest(path: str | os.PathLike[str]) -> Path:
    """``models/<name>`` -> its highest version folder. A version folder itself (it holds a
    ``saved_model.pb``) is returned as is.

    Raises:
        FileNotFoundError: no version folder under ``path``.
    """
    path = Path(path)
    if (path / "saved_model.pb").exists():
        return path
    found = versions(path)
    if not found:
        raise FileNotFoundError(f"no exported model versions under {path}")
    return path / str(found[-1])


def jsonable(x: Any) -> Any:
    """`x` as plain JSON values: mappings and sequences walked, numpy scalars and arrays (anything
    with `.tolist()`) converted, paths as strings, and non-finite floats as null."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, str | bytes):  # numpy scalars and arrays
        return jsonable(x.tolist())
    if isinstance(x, PurePath):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
