from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from consumers.sinks import file_sd, http_sd, sink_metrics
from consumers.sinks.file_sd import FileSd
from consumers.sinks.views import TargetView
from tests.unit.consumers.sinks.builders import group, key

WEB = group("web", "east", "web-0", "10.0.0.1:80")
API = group("api", "east", "api-0", "10.0.1.1:8080")


@pytest.mark.parametrize(
    ("job", "name"),
    [
        ("web", "web.json"),
        ("kube-state.metrics_1", "kube-state.metrics_1.json"),
        ("team a/web", "team%20a%2Fweb.json"),
        ("..", "%2E..json"),
        (".hidden", "%2Ehidden.json"),
        ("ü", "%C3%BC.json"),
    ],
)
def test_file_names(job: str, name: str) -> None:
    assert file_sd.filename(job) == name


def test_plan_lists_only_files_whose_bytes_change() -> None:
    view = TargetView()
    view.apply(key(WEB), WEB)
    view.apply(key(API), API)
    current = http_sd.render([WEB])

    planned = file_sd.plan(view, ["web", "api"], on_disk={"web.json": file_sd.digest(current)})

    assert dict(planned) == {"api.json": http_sd.render([API])}


def test_plan_writes_an_empty_list_for_a_job_without_groups() -> None:
    view = TargetView()
    view.apply(key(WEB), WEB)
    view.apply(key(WEB), None)
    on_disk = {"web.json": file_sd.digest(b"[...]")}
    assert dict(file_sd.plan(view, ["web"], on_disk=on_disk)) == {"web.json": b"[]"}


def test_write_atomic_leaves_a_readable_file_and_no_temp_file(tmp_path: Path) -> None:
    file_sd.write_atomic(tmp_path, "web.json", b"[]")
    file_sd.write_atomic(tmp_path, "web.json", b"[1]")
    assert [p.name for p in tmp_path.iterdir()] == ["web.json"]
    assert (tmp_path / "web.json").read_bytes() == b"[1]"
    assert stat.S_IMODE((tmp_path / "web.json").stat().st_mode) == 0o644


def test_sync_writes_changed_jobs_once(tmp_path: Path) -> None:
    view = TargetView()
    view.apply(key(WEB), WEB)
    registry = CollectorRegistry()
    sink = FileSd(tmp_path / "sd", view=view, metrics=sink_metrics.create(registry))

    assert sink.sync(["web"]) == ["web.json"]
    before = (tmp_path / "sd" / "web.json").stat()
    assert sink.sync(["web"]) == []
    assert FileSd(tmp_path / "sd", view=view).sync(["web"]) == []  # a restart reads the disk

    after = (tmp_path / "sd" / "web.json").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert orjson.loads((tmp_path / "sd" / "web.json").read_bytes())[0]["targets"] == [
        "10.0.0.1:80"
    ]
    assert registry.get_sample_value("sdstream_sink_file_sd_writes_total") == 1


def test_a_job_that_loses_its_groups_keeps_an_empty_file(tmp_path: Path) -> None:
    view = TargetView()
    view.apply(key(WEB), WEB)
    sink = FileSd(tmp_path, view=view)
    sink.sync(["web"])
    view.apply(key(WEB), None)

    assert sink.sync(["web"]) == ["web.json"]

    assert (tmp_path / "web.json").read_bytes() == b"[]"


def test_other_files_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_bytes(b"[1]")
    view = TargetView()
    view.apply(key(WEB), WEB)
    FileSd(tmp_path, view=view).sync(view.jobs())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json", "web.json"]
    assert (tmp_path / "mine.json").read_bytes() == b"[1]"


async def test_update_writes_in_a_worker_thread(tmp_path: Path) -> None:
    view = TargetView()
    view.apply(key(API), API)
    await FileSd(tmp_path, view=view).update(frozenset({"api"}))
    assert (tmp_path / "api.json").read_bytes() == http_sd.render([API])


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o600])
def test_files_get_the_configured_mode(tmp_path: Path, mode: int) -> None:
    view = TargetView()
    view.apply(key(WEB), WEB)

    FileSd(tmp_path, view=view, mode=mode).sync(["web"])

    assert stat.S_IMODE((tmp_path / "web.json").stat().st_mode) == mode


async def test_files_are_made_from_the_groups_held_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files are written in a worker thread while the reader keeps changing the view
    on the event loop: they are made from the groups taken when `update` was called, never
    from a view changing under the thread (that raised "dictionary changed size")."""
    view = TargetView()
    view.apply(key(WEB), WEB)
    later = group("web", "east", "web-1", "10.0.0.2:80")
    threaded = file_sd.asyncio.to_thread

    async def reader_moves_first(func: object, /, *args: object) -> object:
        view.apply(key(later), later)  # the reader, between the call and the thread
        return await threaded(func, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(file_sd.asyncio, "to_thread", reader_moves_first)
    await FileSd(tmp_path, view=view).update(frozenset({"web"}))
    assert (tmp_path / "web.json").read_bytes() == http_sd.render([WEB])
