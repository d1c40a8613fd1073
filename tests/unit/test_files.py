"""common/files.py: atomic writes and the integer version folders."""

from __future__ import annotations

import os

import pytest

from common.files import atomic_write_bytes, atomic_write_text, is_version_name, newest, versions


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path) -> None:
    target = tmp_path / "card.json"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new é")
    assert target.read_text(encoding="utf-8") == "new é"
    atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(tmp_path) == ["card.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch) -> None:
    target = tmp_path / "card.json"
    atomic_write_text(target, "old")

    def broken(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["card.json"]


def test_versions_are_canonical_integer_folders_oldest_first(tmp_path) -> None:
    for name in ("1", "2", "10", ".tmp-3-ab12", "04", "latest", "7.bak", "+8", "²"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a folder")
    assert versions(tmp_path) == [1, 2, 10]
    assert versions(tmp_path / "missing") == []
    assert newest(tmp_path) == tmp_path / "10"
    assert not is_version_name("012") and is_version_name("0")


def test_newest_returns_a_version_folder_as_is_and_refuses_an_empty_root(tmp_path) -> None:
    (tmp_path / "3").mkdir()
    (tmp_path / "3" / "saved_model.pb").write_bytes(b"")
    assert newest(tmp_path / "3") == tmp_path / "3"
    with pytest.raises(FileNotFoundError):
        newest(tmp_path / "empty")
