"""`GET /scrape_configs` and the Target Allocator's `/jobs`: pure renders and routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge

from consumers.sinks import scrape_configs, target_allocator
from consumers.sinks.http_sd import HttpSd
from consumers.sinks.scrape_configs import Job, ScrapeConfigs
from consumers.sinks.views import TargetView
from schemas.scrape_configs import HttpSdClient
from tests.unit.consumers.sinks.builders import group, key

URL = "https://sdstream.example:8443"
CLIENT = HttpSdClient.model_validate({
    "refresh_interval": "15s",
    "tls_config": {"ca_file": "/etc/sd/ca.crt"},
    "authorization": {"credentials_file": "/etc/sd/token"},
})  # fmt: skip
ODD = "serviceMonitor/ns/a b%2F?#ü\n/0"


class _Jobs:
    def __init__(self, *jobs: Job) -> None:
        self.jobs = list(jobs)

    def scrape_jobs(self) -> Sequence[Job]:
        return list(self.jobs)


def _route(*jobs: Job) -> ScrapeConfigs:
    return ScrapeConfigs(_Jobs(*jobs), ready=lambda: True, url=lambda: URL, client=CLIENT)


def _call(route: ScrapeConfigs, path: str, **headers: str) -> Any:
    return asyncio.run(route(path, query={}, headers=headers))


def _yaml(route: ScrapeConfigs, accept: str = "") -> Any:
    reply = _call(route, "/scrape_configs", **({"accept": accept} if accept else {}))
    assert reply.status == 200
    return reply


def test_each_job_reads_its_http_sd_with_sdstream_s_own_tls_and_authorization() -> None:
    job = Job("podMonitor/ns/p/0", {"c1": {"honor_labels": True, "scheme": "https",
                                           "scrape_interval": "5s"}})  # fmt: skip
    reply = _yaml(_route(job))
    assert reply.headers["Content-Type"] == "application/yaml"
    assert yaml.safe_load(reply.body) == {"scrape_configs": [{
        "job_name": "podMonitor/ns/p/0",
        "honor_labels": True,
        "http_sd_configs": [{
            "url": f"{URL}/http_sd/podMonitor%2Fns%2Fp%2F0", "refresh_interval": "15s",
            "tls_config": {"ca_file": "/etc/sd/ca.crt"},
            "authorization": {"type": "Bearer", "credentials_file": "/etc/sd/token"}}],
        "scrape_interval": "5s",
        "scheme": "https",
    }]}  # fmt: skip


def test_odd_job_names_are_escaped_in_urls_and_round_trip_in_yaml() -> None:
    reply = _yaml(_route(Job(ODD, {"c1": {"honor_labels": False}})))
    (job,) = yaml.safe_load(reply.body)["scrape_configs"]
    assert job["job_name"] == ODD
    url = job["http_sd_configs"][0]["url"]
    assert url == f"{URL}/http_sd/serviceMonitor%2Fns%2Fa%20b%252F%3F%23%C3%BC%0A%2F0"


def test_no_jobs_is_an_empty_list() -> None:
    assert yaml.safe_load(_yaml(_route()).body) == {"scrape_configs": []}


def test_the_target_allocator_shape_is_a_map_by_job_name() -> None:
    jobs = [Job("b", {"c1": {"honor_labels": False}}), Job("a", {"c1": {"honor_labels": True}})]
    route = _route(*jobs)
    for reply in (_yaml(route, "application/json"),
                  _call(route, "/ta/scrape_configs")):  # fmt: skip
        assert reply.headers["Content-Type"] == "application/json"
        found = orjson.loads(reply.body)
        assert list(found) == ["b", "a"]
        assert found["a"]["honor_labels"] is True
        assert found["a"]["http_sd_configs"][0]["url"] == f"{URL}/http_sd/a"


def test_clusters_that_disagree_take_the_first_and_are_reported() -> None:
    route = _route(Job("j", {"west": {"honor_labels": True}, "east": {"honor_labels": False}}))
    (job,) = yaml.safe_load(_yaml(route).body)["scrape_configs"]
    assert job["honor_labels"] is False
    assert route.conflicts == ("j",)


def test_the_answer_is_cached_until_invalidated() -> None:
    jobs = _Jobs(Job("a", {"c1": {"honor_labels": False}}))
    route = ScrapeConfigs(jobs, ready=lambda: True, url=lambda: URL, client=HttpSdClient())
    first = _call(route, "/scrape_configs").body
    jobs.jobs.append(Job("b", {"c1": {"honor_labels": False}}))
    assert _call(route, "/scrape_configs").body == first
    asyncio.run(route.update(frozenset({"b"})))
    assert b"job_name: b" in _call(route, "/scrape_configs").body


def test_a_render_started_before_a_change_is_not_kept() -> None:
    jobs = _Jobs(Job("a", {"c1": {"honor_labels": False}}))
    route = ScrapeConfigs(jobs, ready=lambda: True, url=lambda: URL, client=HttpSdClient())

    async def changed_while_rendering() -> tuple[bytes, bytes]:
        first = asyncio.ensure_future(route("/scrape_configs", query={}, headers={}))
        await asyncio.sleep(0)  # the render is under way in its thread
        jobs.jobs.append(Job("b", {"c1": {"honor_labels": False}}))
        await route.update(frozenset({"b"}))
        second = await route("/scrape_configs", query={}, headers={})  # while first renders
        return (await first).body, second.body

    before, after = asyncio.run(changed_while_rendering())
    assert b"job_name: b" not in before
    assert b"job_name: b" in after


def test_not_before_caught_up_and_not_other_paths() -> None:
    route = ScrapeConfigs(_Jobs(), ready=lambda: False, url=lambda: URL, client=HttpSdClient())
    assert _call(route, "/scrape_configs").status == 503
    assert _call(route, "/scrape_configsx").status == 404


WEB = group("serviceMonitor/ns/web/0", "east", "web-0", "10.0.0.2:80", "10.0.0.1:80")


def _ta() -> target_allocator.TargetAllocator:
    view = TargetView(configured=frozenset({"empty"}))
    view.apply(key(WEB), WEB)
    return target_allocator.TargetAllocator(view, HttpSd(view, ready=lambda: True))


def _get(path: str, **query: str) -> Any:
    reply = asyncio.run(_ta()(path, query={k: [v] for k, v in query.items()}, headers={}))
    return reply.status, orjson.loads(reply.body) if reply.status == 200 else None


def test_jobs_lists_jobs_with_targets_linked_query_escaped() -> None:
    link = "/jobs/serviceMonitor%2Fns%2Fweb%2F0/targets"
    assert _get("/jobs") == (200, {"serviceMonitor/ns/web/0": {"_link": link}})
    assert _get("/ta/jobs") == _get("/jobs")
    assert target_allocator.link("a b+c") == "/jobs/a+b%2Bc/targets"


def test_targets_for_a_collector_are_one_object_per_target() -> None:
    status, found = _get("/jobs/serviceMonitor%2Fns%2Fweb%2F0/targets", collector_id="c-0")
    assert status == 200
    assert [t["targets"] for t in found] == [["10.0.0.1:80"], ["10.0.0.2:80"]]
    assert found[0]["labels"]["__meta_kubernetes_pod_name"] == "web-0"


def test_targets_without_a_collector_are_keyed_by_collector() -> None:
    status, found = _get("/jobs/serviceMonitor%2Fns%2Fweb%2F0/targets")
    _, direct = _get("/jobs/serviceMonitor%2Fns%2Fweb%2F0/targets", collector_id="x")
    assert status == 200
    assert found == {"sdstream": {
        "_link": "/debug/jobs/serviceMonitor%2Fns%2Fweb%2F0/targets?collector_id=sdstream",
        "targets": direct}}  # fmt: skip


def test_unknown_jobs_and_paths_are_404() -> None:
    assert _get("/jobs/nope/targets", collector_id="c")[0] == 404
    assert _get("/jobs/x")[0] == 404
    assert _get("/jobs//targets")[0] == 404
    assert _get("/jobsx")[0] == 404
    assert _get("/jobs/empty/targets", collector_id="c") == (200, [])


def test_the_default_url_is_the_server_s_own_address() -> None:
    assert scrape_configs.default_url("0.0.0.0", 8080, tls=False) == "http://127.0.0.1:8080"  # noqa: S104
    assert scrape_configs.default_url("::", 8443, tls=True) == "https://[::1]:8443"
    assert scrape_configs.default_url("sd.example", 80, tls=True) == "https://sd.example:80"


def test_live_jobs_come_in_the_operator_s_order() -> None:
    names = ["podMonitor/a/x/0", "serviceMonitor/b/y/10", "serviceMonitor/b/y/2",
             "serviceMonitor/a/z/0"]  # fmt: skip
    ordered = sorted(names, key=scrape_configs.operator_order)
    assert ordered == ["serviceMonitor/a/z/0", "serviceMonitor/b/y/2", "serviceMonitor/b/y/10",
                       "podMonitor/a/x/0"]  # fmt: skip


def test_a_jobs_link_leads_to_its_targets_even_with_a_space_in_its_name() -> None:
    spaced = group("serviceMonitor/ns/w b/0", "east", "web-0", "10.0.0.3:80")
    view = TargetView(configured=frozenset())
    view.apply(key(spaced), spaced)
    route = target_allocator.TargetAllocator(view, HttpSd(view, ready=lambda: True))
    link = target_allocator.link("serviceMonitor/ns/w b/0")
    reply = asyncio.run(route(link, query={"collector_id": ["c"]}, headers={}))
    assert reply.status == 200
    assert [t["targets"] for t in orjson.loads(reply.body)] == [["10.0.0.3:80"]]


def test_jobs_whose_clusters_disagree_are_counted_and_logged_once_each_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("disagreeing", "jobs", registry=registry)
    agree = Job("a", {"east": {"scrape_interval": "5s"}, "west": {"scrape_interval": "5s"}})
    differ = Job("b", {"east": {"scrape_interval": "5s", "metrics_path": "/m"},
                       "west": {"scrape_interval": "9s"}})  # fmt: skip
    jobs = _Jobs(agree, differ)
    route = ScrapeConfigs(
        jobs, ready=lambda: True, url=lambda: URL, client=CLIENT, disagreeing=gauge
    )
    with caplog.at_level(logging.INFO, logger=scrape_configs.__name__):
        for _ in range(2):  # the second change logs nothing: still the same disagreement
            asyncio.run(route.update(frozenset({"b"})))
        assert route.disagreeing == {"b": ("metrics_path", "scrape_interval")}
        assert registry.get_sample_value("disagreeing") == 1
        jobs.jobs[1] = Job(
            "b", {"east": {"scrape_interval": "9s"}, "west": {"scrape_interval": "9s"}}
        )
        asyncio.run(route.update(frozenset({"b"})))
        asyncio.run(route.update(frozenset({"b"})))
    assert registry.get_sample_value("disagreeing") == 0
    assert [r.getMessage() for r in caplog.records] == [
        "Monitor job b: its clusters' monitors set different metrics_path, scrape_interval; "
        "/scrape_configs uses cluster east's (the first by name).",
        "Monitor job b: its clusters no longer disagree.",
    ]


def test_differing_keys_count_a_key_one_cluster_leaves_out() -> None:
    assert scrape_configs.differing({"a": {"x": 1}, "b": {"x": 1, "y": 2}}) == ("y",)
    assert scrape_configs.differing({"a": {"x": 1}, "b": {"x": 1}}) == ()
    assert scrape_configs.differing({"a": {"x": 1}}) == ()
