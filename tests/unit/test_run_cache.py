"""The run's scratch folder: gone after a run that ends well; after one that fails, only the frozen
encoder's photo features stay, for `--resume` to reuse."""

from __future__ import annotations

from training.pipeline import _clear_cache


def _scratch(folder):
    (folder / "train-decoded").mkdir(parents=True)
    (folder / "train-decoded" / "cache.data-00000-of-00001").write_bytes(b"x")
    (folder / "valid.index").write_bytes(b"x")
    (folder / "photo-features-efficientnet_lite0-224.npz").write_bytes(b"features")
    return folder


def test_a_finished_run_leaves_no_scratch(tmp_path):
    folder = _scratch(tmp_path / "cache")
    _clear_cache(folder, keep_photo_features=False)
    assert not folder.exists()


def test_a_failed_run_keeps_only_its_photo_features(tmp_path):
    folder = _scratch(tmp_path / "cache")
    _clear_cache(folder, keep_photo_features=True)
    assert sorted(p.name for p in folder.iterdir()) == ["photo-features-efficientnet_lite0-224.npz"]
    assert (folder / "photo-features-efficientnet_lite0-224.npz").read_bytes() == b"features"
    _clear_cache(tmp_path / "absent", keep_photo_features=True)  # no folder: nothing to do
