"""Hot reload: a newer version is picked up with no failed request; a broken one is refused with a
log line while the current one keeps serving; work-in-progress folders are ignored."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import threading
from pathlib import Path

from service.registry import list_versions
from tests.support.service_testkit import (
    GOOD_ITEM,
    image_bytes,
    install_version,
    make_settings,
    wait_until,
)

ITEM = {**GOOD_ITEM, "image": base64.b64encode(image_bytes("JPEG")).decode()}


def served_version(client) -> str:
    return client.get("/v1/model").json()["served"]["version"]


def refusals(caplog, version: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "service.registry" and f"event=model_refused version={version} " in r.getMessage()
    ]


def break_savedmodel(path: Path) -> None:
    """Truncate saved_model.pb the way an interrupted copy would."""
    pb = path / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:200])


def drop_colour_from_card(path: Path) -> None:
    card = json.loads((path / "model_card.json").read_text())
    card["inputs"] = [i for i in card["inputs"] if i["name"] != "colour"]
    (path / "model_card.json").write_text(json.dumps(card))


def test_list_versions_ignores_work_in_progress_and_odd_names(tmp_path) -> None:
    for name in ("1", "2", "10", ".tmp-3-ab12", "04", "latest", "7.bak"):
        (tmp_path / name).mkdir()
    (tmp_path / "5").write_text("a file, not a folder")
    assert list_versions(tmp_path) == [10, 2, 1]
    assert list_versions(tmp_path / "missing") == []


def test_new_version_is_picked_up_without_failed_requests(exported, tmp_path, start_client, caplog) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir, reload_interval_s=0.1))
    first = client.post("/v1/predict", json=ITEM).json()
    assert first["model_version"] == "1"

    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            response = client.post("/v1/predict", json=ITEM)
            results.append((response.status_code, response.json().get("model_version", "")))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        wait_until(lambda: len(results) >= 3, 60, "requests before the swap")
        with caplog.at_level(logging.INFO, logger="service.registry"):
            install_version(exported["v2"], model_dir, 2)
            wait_until(lambda: any(v == "2" for _, v in results), 60, "an answer from version 2")
            seen = len(results)
            wait_until(lambda: len(results) >= seen + 3, 60, "requests after the swap")
    finally:
        stop.set()
        thread.join(30)

    assert all(status == 200 for status, _ in results), results
    versions = [v for _, v in results]
    assert versions[0] == "1" and versions[-1] == "2"
    assert versions == sorted(versions)  # never back to 1 once 2 answered
    second = client.post("/v1/predict", json=ITEM).json()
    assert second["model_version"] == "2" and second["price"] != first["price"]
    assert served_version(client) == "2"
    assert client.get("/readyz").json()["model_version"] == "2"
    assert any("event=model_loaded version=2 previous=1" in r.getMessage() for r in caplog.records)


def test_broken_versions_are_refused_and_the_current_one_keeps_serving(
    exported, tmp_path, start_client, caplog
) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir, reload_interval_s=0.1))
    before = client.post("/v1/predict", json=ITEM).json()

    with caplog.at_level(logging.INFO, logger="service.registry"):
        # A copy still in progress under the exporter's work-in-progress name: ignored.
        shutil.copytree(exported["v2"], model_dir / ".tmp-4-ab12")
        # A version whose saved_model.pb is truncated.
        broken = install_version(exported["v2"], model_dir, 2, edit=break_savedmodel)
        wait_until(lambda: refusals(caplog, 2), 60, "version 2 to be refused")
        # A version whose card does not match its signature: refused at the checks.
        install_version(exported["v2"], model_dir, 3, edit=drop_colour_from_card)
        wait_until(lambda: refusals(caplog, 3), 60, "version 3 to be refused")

    [refused_2] = refusals(caplog, 2)
    assert "serving=1" in refused_2 and "SavedModel does not load" in refused_2
    [refused_3] = refusals(caplog, 3)
    assert "signature needs inputs the card does not list: ['colour']" in refused_3
    after = client.post("/v1/predict", json=ITEM)
    assert after.status_code == 200 and after.json() == before
    assert served_version(client) == "1"
    metrics = client.get("/metrics").text
    assert 'model_loads_total{result="refused"} 2.0' in metrics
    assert "model_version 1.0" in metrics

    # Fixing the broken folder in place (new files) makes it a candidate again.
    shutil.rmtree(broken)
    shutil.copytree(exported["v2"], broken)
    wait_until(lambda: served_version(client) == "2", 60, "the repaired version 2")
    assert client.post("/v1/predict", json=ITEM).json()["model_version"] == "2"


def test_start_falls_back_below_a_broken_newest_version(exported, tmp_path, start_client, caplog) -> None:
    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    install_version(exported["v2"], model_dir, 2, edit=lambda p: (p / "model_card.json").write_text("{"))
    with caplog.at_level(logging.INFO, logger="service.registry"):
        client = start_client(make_settings(model_dir))
    assert client.get("/readyz").json() == {"status": "ready", "model_version": "1"}
    [line] = refusals(caplog, 2)
    assert "model_card.json unreadable" in line and "serving=none" in line


def test_a_swap_freezes_the_served_heap_and_lets_the_replaced_version_go(exported, tmp_path, start_client) -> None:
    """The loaded model's objects go to the GC's permanent generation (no full collection walks
    them mid-request), and the next swap unfreezes first, so the old version is still freed."""
    import gc
    import weakref

    model_dir = tmp_path / "price"
    install_version(exported["v1"], model_dir, 1)
    client = start_client(make_settings(model_dir, reload_interval_s=0.1))
    assert client.post("/v1/predict", json=ITEM).status_code == 200
    registry = client.app.state.service.registry
    wait_until(lambda: gc.get_freeze_count() > 10_000, 30, "the heap frozen after the first load")
    old = weakref.ref(registry.current)
    install_version(exported["v2"], model_dir, 2)
    wait_until(lambda: served_version(client) == "2", 60, "version 2 served")
    assert client.post("/v1/predict", json=ITEM).json()["model_version"] == "2"
    wait_until(lambda: old() is None or gc.collect() < 0, 30, "version 1 collected")
