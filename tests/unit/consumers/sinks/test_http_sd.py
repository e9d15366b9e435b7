from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Mapping, Sequence

import orjson
import pytest
from prometheus_client import CollectorRegistry

from consumers.sinks import deflated, http_sd, sd_json, sink_metrics
from consumers.sinks.http_sd import HttpSd, PartsReply
from consumers.sinks.views import Held, TargetView
from schemas.targets import TargetGroup
from schemas.topics import TargetKey
from tests.unit.consumers.sinks.builders import group, key

WEB = group("web", "east", "web-0", "10.0.0.2:80", "10.0.0.1:80")
WEB_WEST = group("web", "west", "web-0", "10.9.0.1:80")


def _view(*groups: TargetGroup, configured: frozenset[str] = frozenset()) -> TargetView:
    view = TargetView(configured=configured)
    for g in groups:
        view.apply(key(g), g)
    return view


def _get(
    sd: HttpSd,
    path: str,
    *,
    query: Mapping[str, Sequence[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> PartsReply:
    return sd.answer(path, query=query or {}, headers=headers or {})


def test_a_job_is_one_entry_per_target_sorted_with_target_labels_over_group_labels() -> None:
    reply = _get(HttpSd(_view(WEB), ready=lambda: True), "/http_sd/web")

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    common = {
        "__meta_kubernetes_namespace": "default",
        "__meta_kubernetes_pod_name": "web-0",
        "cluster": "east",
        "__meta_kubernetes_pod_container_port_number": "80",
    }
    assert orjson.loads(reply.body) == [
        {"targets": ["10.0.0.1:80"], "labels": common},
        {"targets": ["10.0.0.2:80"], "labels": common},
    ]


def test_the_body_and_etag_do_not_depend_on_arrival_order() -> None:
    first = _get(HttpSd(_view(WEB, WEB_WEST), ready=lambda: True), "/http_sd/web")
    second = _get(HttpSd(_view(WEB_WEST, WEB), ready=lambda: True), "/http_sd/web")
    assert (first.body, first.headers["ETag"]) == (second.body, second.headers["ETag"])


def test_a_changed_job_gets_a_new_etag() -> None:
    moved = group("web", "east", "web-0", "10.0.0.3:80")
    before = _get(HttpSd(_view(WEB), ready=lambda: True), "/http_sd/web")
    after = _get(HttpSd(_view(moved), ready=lambda: True), "/http_sd/web")
    assert before.body != after.body
    assert before.headers["ETag"] != after.headers["ETag"]


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [("{tag}", 304), ('W/{tag}, "other"', 304), ("*", 304), ('"other"', 200), ("", 200)],
)
def test_if_none_match(if_none_match: str, status: int) -> None:
    sd = HttpSd(_view(WEB), ready=lambda: True)
    tag = _get(sd, "/http_sd/web").headers["ETag"]
    reply = _get(sd, "/http_sd/web", headers={"if-none-match": if_none_match.format(tag=tag)})
    assert reply.status == status
    assert reply.headers["ETag"] == tag
    assert (reply.body == b"") == (status == 304)


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/http_sd/web", 503, {"error": "not caught up with the targets topic yet"}),
        ("/http_sd/nope", 503, {"error": "not caught up with the targets topic yet"}),
        ("/http_sd", 503, {"error": "not caught up with the targets topic yet"}),
    ],
)
def test_nothing_is_served_before_catching_up(path: str, status: int, body: object) -> None:
    reply = _get(HttpSd(_view(WEB), ready=lambda: False), path)
    assert (reply.status, orjson.loads(reply.body)) == (status, body)
    assert reply.headers["Content-Type"] == "application/json"


def test_an_unknown_job_is_404_listing_the_known_ones() -> None:
    reply = _get(HttpSd(_view(WEB), ready=lambda: True), "/http_sd/nope")
    assert reply.status == 404
    assert orjson.loads(reply.body) == {"error": "unknown job", "job": "nope", "jobs": ["web"]}


def test_a_known_job_without_groups_is_an_empty_list() -> None:
    view = _view(WEB, configured=frozenset({"idle"}))
    view.apply(key(WEB), None)
    sd = HttpSd(view, ready=lambda: True)
    for path in ("/http_sd/idle", "/http_sd/web"):
        reply = _get(sd, path)
        assert (reply.status, reply.body) == (200, b"[]")


@pytest.mark.parametrize(
    ("query", "clusters"),
    [
        ({}, ["east", "east", "west"]),
        ({"cluster": ["west"]}, ["west"]),
        ({"cluster": ["east", "west"]}, ["east", "east", "west"]),
        ({"cluster": ["east,west"]}, ["east", "east", "west"]),
        ({"cluster": ["north"]}, []),
    ],
)
def test_the_cluster_filter(query: Mapping[str, Sequence[str]], clusters: list[str]) -> None:
    reply = _get(HttpSd(_view(WEB, WEB_WEST), ready=lambda: True), "/http_sd/web", query=query)
    assert [e["labels"]["cluster"] for e in orjson.loads(reply.body)] == clusters


def test_a_change_shows_after_invalidate() -> None:
    view = _view(WEB)
    sd = HttpSd(view, ready=lambda: True)
    before = _get(sd, "/http_sd/web", query={"cluster": ["east"]})
    moved = group("web", "east", "web-0", "10.0.0.3:80")
    view.apply(key(WEB_WEST), WEB_WEST)
    view.apply(key(moved), moved)
    assert _get(sd, "/http_sd/web", query={"cluster": ["east"]}) == before  # cached

    sd.invalidate({"web"})

    east = orjson.loads(_get(sd, "/http_sd/web", query={"cluster": ["east"]}).body)
    assert [e["targets"] for e in east] == [["10.0.0.3:80"]]
    assert len(orjson.loads(_get(sd, "/http_sd/web").body)) == 2


def test_made_up_cluster_names_share_one_cache_entry_and_count_in_its_cost() -> None:
    sd = HttpSd(_view(WEB, WEB_WEST), ready=lambda: True)
    for n in range(50):
        names = ",".join(f"c{i:04}" for i in range(n, n + 1600))
        reply = _get(sd, "/http_sd/web", query={"cluster": [names + ",west"]})
        assert [e["targets"] for e in orjson.loads(reply.body)] == [["10.9.0.1:80"]]
    one = sd.cache_bytes
    none = _get(sd, "/http_sd/web", query={"cluster": ["c0001"]})
    alll = _get(sd, "/http_sd/web")

    assert one < 4096  # one entry for all 50 queries, not 50 entries of 1600 names
    assert (none.body, len(orjson.loads(alll.body))) == (b"[]", 3)  # nothing is not all


def test_a_keys_cluster_names_count_in_its_cost() -> None:
    clusters = [group("web", f"cluster-{i:04}", "w", f"10.1.{i // 250}.{i % 250}:80")
                for i in range(300)]  # fmt: skip
    sd = HttpSd(_view(*clusters), ready=lambda: True)
    names = ",".join(f"cluster-{i:04}" for i in range(300))
    _get(sd, "/http_sd/web", query={"cluster": [names]})

    assert sd.cache_bytes > 300 * 50  # each of the 300 names in the key is charged


def test_job_names_are_percent_decoded() -> None:
    odd = group("team a/web", "east", "w-0", "10.0.0.5:80")
    reply = _get(HttpSd(_view(odd), ready=lambda: True), "/http_sd/team%20a%2Fweb")
    assert reply.status == 200
    assert orjson.loads(reply.body)[0]["targets"] == ["10.0.0.5:80"]


def test_the_job_list() -> None:
    api = group("api", "east", "api-0", "10.0.1.1:8080")
    reply = _get(HttpSd(_view(WEB, WEB_WEST, api), ready=lambda: True), "/http_sd")
    assert orjson.loads(reply.body) == [
        {"job": "api", "path": "/http_sd/api", "groups": 1, "targets": 1},
        {"job": "web", "path": "/http_sd/web", "groups": 2, "targets": 3},
    ]


@pytest.mark.parametrize("path", ["/http_sdx", "/metrics"])
def test_paths_outside_the_prefix_are_404(path: str) -> None:
    assert _get(HttpSd(_view(WEB), ready=lambda: True), path).status == 404


def test_render_of_no_groups_is_an_empty_list() -> None:
    assert http_sd.render([]) == b"[]"


MANY = [group("web", "east", f"web-{i}", f"10.0.{i}.1:80", f"10.0.{i}.2:80") for i in range(30)]


def test_hashmod_is_prometheus_relabel_hashmod() -> None:
    """The vector from Prometheus's relabel tests: hashmod of "baz", modulus 1000, is 976."""
    assert http_sd.hashmod("baz", 1000) == 976


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_shards_split_a_job_by_hashmod_of_the_address(shards: int) -> None:
    sd = HttpSd(_view(*MANY, WEB_WEST), ready=lambda: True)
    whole = orjson.loads(_get(sd, "/http_sd/web").body)

    parts, tags = [], set()
    for shard in range(shards):
        query = {"shard": [str(shard)], "shards": [str(shards)]}
        reply = _get(sd, "/http_sd/web", query=query)
        entries = orjson.loads(reply.body)
        assert entries  # 62 targets: every shard gets some
        assert {http_sd.hashmod(e["targets"][0], shards) for e in entries} == {shard}
        parts += entries
        tags.add(reply.headers["ETag"])

    assert sorted(parts, key=orjson.dumps) == sorted(whole, key=orjson.dumps)
    assert len(tags) == shards  # each shard's body has its own tag


def test_a_shard_combines_with_the_cluster_filter() -> None:
    sd = HttpSd(_view(*MANY, WEB_WEST), ready=lambda: True)
    shard = http_sd.hashmod("10.9.0.1:80", 2)

    query = {"cluster": ["west"], "shard": [str(shard)], "shards": ["2"]}
    assert [e["targets"] for e in orjson.loads(_get(sd, "/http_sd/web", query=query).body)] == [
        ["10.9.0.1:80"]
    ]
    query = {"cluster": ["west"], "shard": [str(1 - shard)], "shards": ["2"]}
    assert _get(sd, "/http_sd/web", query=query).body == b"[]"


@pytest.mark.parametrize(
    "query",
    [{"shard": ["1"]}, {"shards": ["2"]}, {"shard": ["2"], "shards": ["2"]},
     {"shard": ["-1"], "shards": ["2"]}, {"shard": ["a"], "shards": ["2"]},
     {"shard": ["0"], "shards": ["0"]}],
)  # fmt: skip
def test_bad_shard_parameters_are_400(query: Mapping[str, Sequence[str]]) -> None:
    reply = _get(HttpSd(_view(WEB), ready=lambda: True), "/http_sd/web", query=query)

    assert reply.status == 400
    assert "shard" in orjson.loads(reply.body)["error"]


def test_a_changed_group_is_served_from_its_new_shard() -> None:
    view = _view(*MANY)
    sd = HttpSd(view, ready=lambda: True)

    def shard_of(address: str) -> list[str]:
        """The addresses served by the shard that `address` hashes to (of 3)."""
        query = {"shard": [str(http_sd.hashmod(address, 3))], "shards": ["3"]}
        return [e["targets"][0] for e in orjson.loads(_get(sd, "/http_sd/web", query=query).body)]

    assert "10.0.5.1:80" in shard_of("10.0.5.1:80")
    moved = group("web", "east", "web-5", "10.7.7.7:80")
    view.apply(key(moved), moved)
    sd.invalidate({"web"})

    assert "10.7.7.7:80" in shard_of("10.7.7.7:80")
    assert "10.0.5.1:80" not in shard_of("10.0.5.1:80")


def test_shards_above_the_maximum_are_400_before_any_work() -> None:
    sd = HttpSd(_view(*MANY), ready=lambda: True, max_shards=16)
    ok = _get(sd, "/http_sd/web", query={"shard": ["15"], "shards": ["16"]})
    huge = _get(sd, "/http_sd/web", query={"shard": ["0"], "shards": ["1000000"]})

    assert ok.status == 200
    assert (huge.status, orjson.loads(huge.body)) == (
        400,
        {"error": "shards must be at most 16, got shards=1000000"},
    )
    assert sd.cache_bytes < 4096  # one small answer, nothing sized by N


def test_a_shard_index_filters_a_fragment_like_hashmod() -> None:
    fragment = sd_json.http_sd_fragment(MANY[3])
    indexed = http_sd.index(fragment)
    whole = orjson.loads(b"[" + fragment + b"]")
    for shard in range(5):
        kept = orjson.loads(b"[" + http_sd.shard_fragment(fragment, indexed, (shard, 5)) + b"]")
        assert kept == [e for e in whole if http_sd.hashmod(e["targets"][0], 5) == shard]


def test_many_distinct_queries_stay_within_the_cache_budget() -> None:
    registry = CollectorRegistry()
    metrics = sink_metrics.create(registry)
    sd = HttpSd(_view(*MANY, WEB_WEST), ready=lambda: True, cache_bytes=8192, metrics=metrics)
    for shards in range(1, 40):
        query = {"shard": ["0"], "shards": [str(shards)], "cluster": [f"c{shards},east"]}
        assert _get(sd, "/http_sd/web", query=query).status == 200

    assert 0 < sd.cache_bytes <= 8192
    assert registry.get_sample_value("sdstream_sink_http_sd_cache_bytes") == sd.cache_bytes
    assert (registry.get_sample_value("sdstream_sink_http_sd_cache_evictions_total") or 0) > 0


async def test_the_route_renders_off_the_event_loop_and_caches() -> None:
    sd = HttpSd(_view(*MANY, WEB_WEST), ready=lambda: True)
    query = {"shard": ["1"], "shards": ["3"]}

    first, second = await asyncio.gather(
        sd("/http_sd/web", query=query, headers={}), sd("/http_sd/web", query=query, headers={})
    )

    assert first == second == _get(sd, "/http_sd/web", query=query)
    assert sd.cache_bytes > 0


async def test_an_answer_rendered_across_a_change_is_not_kept() -> None:
    view = _view(WEB)
    sd = HttpSd(view, ready=lambda: True)
    rendering = asyncio.ensure_future(sd("/http_sd/web", query={}, headers={}))
    await asyncio.sleep(0)  # the render has taken its copy of the job
    view.apply(key(WEB), None)
    sd.invalidate({"web"})

    await rendering

    # Only its identity body may stay (it names the segments it came from), not the answer.
    assert sd._cache.peek(http_sd.Wanted("web", None, None).key) is None
    assert _get(sd, "/http_sd/web").body == b"[]"


async def test_a_request_after_a_change_does_not_join_a_render_from_before_it() -> None:
    view = _view(WEB)
    sd = HttpSd(view, ready=lambda: True)
    before = asyncio.ensure_future(sd("/http_sd/web", query={}, headers={}))
    await asyncio.sleep(0)  # its render has taken its copy of the job
    view.apply(key(WEB), None)
    sd.invalidate({"web"})

    after = await sd("/http_sd/web", query={}, headers={})

    assert len(orjson.loads((await before).body)) == 2
    assert after.body == b"[]"


async def test_misses_beyond_max_renders_are_503_with_retry_after() -> None:
    registry = CollectorRegistry()
    sd = HttpSd(_view(*MANY), ready=lambda: True, metrics=sink_metrics.create(registry))
    release = threading.Event()
    build = sd._build

    def blocked(wanted: http_sd.Wanted, groups: Mapping[TargetKey, Held]) -> http_sd.Rendered:
        release.wait(10)
        return build(wanted, groups)

    sd._build = blocked  # type: ignore[method-assign]

    def shard(shards: int) -> Awaitable[PartsReply]:
        return sd("/http_sd/web", query={"shard": ["0"], "shards": [str(shards)]}, headers={})

    try:
        queued = [asyncio.ensure_future(shard(n)) for n in range(1, http_sd.MAX_RENDERS + 1)]
        await asyncio.sleep(0)  # each has started (or queued) its render
        joining = asyncio.ensure_future(shard(1))  # the same answer as one under way
        busy = await shard(http_sd.MAX_RENDERS + 1)
    finally:
        release.set()
    async with asyncio.timeout(10):
        answers = await asyncio.gather(*queued, joining)

    assert (busy.status, busy.headers["Retry-After"]) == (503, "5")
    assert registry.get_sample_value("sdstream_sink_http_sd_busy_total") == 1
    assert {a.status for a in answers} == {200}


def _targets(reply: PartsReply) -> list[str]:
    return [entry["targets"][0] for entry in orjson.loads(reply.body)]


async def test_a_kept_identity_body_is_never_served_after_a_change() -> None:
    """A client without gzip gets the identity body kept for the answer; after a change
    (and its invalidation), the body made for the new answer, never the one before."""
    view = _view(WEB)
    sd = HttpSd(view, ready=lambda: True)
    first = await sd("/http_sd/web", query={}, headers={})
    again = await sd("/http_sd/web", query={}, headers={})
    assert again.parts[0] is first.parts[0]  # kept, sent as it is  # type: ignore[index]
    moved = group("web", "east", "web-0", "10.0.0.3:80")
    sd.invalidate(view.apply(key(moved), moved))
    gzipped = {"accept-encoding": "gzip"}  # rendered on this thread: no identity body made
    assert _get(sd, "/http_sd/web", headers=gzipped).status == 200

    changed = await sd("/http_sd/web", query={}, headers={})

    assert _targets(first) == ["10.0.0.1:80", "10.0.0.2:80"]
    assert changed.body == view.document("web")
    assert _targets(changed) == ["10.0.0.3:80"]
    assert _targets(_get(sd, "/http_sd/web")) == ["10.0.0.3:80"]


async def test_the_identity_body_after_a_change_is_kept_for_the_new_answer() -> None:
    view = _view(*MANY)
    sd = HttpSd(view, ready=lambda: True)
    await sd("/http_sd/web", query={}, headers={})
    moved = group("web", "east", "web-0", "10.0.0.3:80")
    sd.invalidate(view.apply(key(moved), moved))

    changed = await sd("/http_sd/web", query={}, headers={})

    wanted = http_sd.Wanted("web", None, None)
    kept, answer = sd._cache.peek(wanted.identity_key), sd._cache.peek(wanted.key)
    assert isinstance(kept, deflated.Inflated)
    assert isinstance(answer, http_sd.Rendered)
    assert kept.source is answer.body  # made by the render, in the same trip
    assert changed.parts == (kept.body,)
    assert changed.body == view.document("web")


async def test_an_identity_body_past_its_share_of_the_budget_streams_and_is_not_kept() -> None:
    view = _view(*MANY)
    whole = len(view.document("web"))
    sd = HttpSd(view, ready=lambda: True, cache_bytes=whole * http_sd.IDENTITY_SHARE - 1)

    reply = await sd("/http_sd/web", query={}, headers={})

    assert reply.size == whole  # inflated as it is written, a slice at a time
    assert reply.body == view.document("web")
    assert sd._cache.peek(http_sd.Wanted("web", None, None).identity_key) is None
