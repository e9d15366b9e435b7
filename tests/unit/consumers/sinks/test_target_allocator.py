"""The Target Allocator API with `monitors.target_allocator`: each collector gets its share."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import orjson
import pytest

from consumers.sinks import allocation, target_allocator
from consumers.sinks.http_sd import HttpSd
from consumers.sinks.views import TargetView
from tests.unit.consumers.sinks.builders import group, key

JOB = "serviceMonitor/ns/web/0"
PATH = "/jobs/serviceMonitor%2Fns%2Fweb%2F0/targets"
FLEET = ("collector-0", "collector-1", "collector-2")


def groups(n: int, cluster: str = "east", first: int = 0) -> list[Any]:
    return [group(JOB, cluster, f"web-{i}", f"10.0.{i}.1:80", f"10.0.{i}.2:81")
            for i in range(first, first + n)]  # fmt: skip


class Route:
    def __init__(self, *, collectors: tuple[str, ...] = FLEET, ready: bool = True) -> None:
        self.view = TargetView(configured=frozenset({JOB, "empty"}))
        self.http = HttpSd(self.view, ready=lambda: ready)
        self.route = target_allocator.TargetAllocator(
            self.view, self.http, ready=lambda: ready, collectors=collectors
        )

    def put(self, *made: Any) -> None:
        changed: set[str] = set()
        for g in made:
            changed |= self.view.apply(key(g), g)
        self.http.invalidate(changed)

    async def get(self, path: str = PATH, **query: str | list[str]) -> tuple[int, Any]:
        asked = {k: v if isinstance(v, list) else [v] for k, v in query.items()}
        reply = await self.route(path, query=asked, headers={})
        return reply.status, orjson.loads(reply.body)

    async def addresses(self, collector: str, **query: str) -> list[str]:
        status, found = await self.get(collector_id=collector, **query)
        assert status == 200
        return [t["targets"][0] for t in found]


def every_address(made: list[Any]) -> list[str]:
    return sorted(t["__address__"] for g in made for t in g.targets)


async def test_each_collector_gets_its_share_and_together_they_are_the_job() -> None:
    r = Route()
    made = groups(30)
    r.put(*made)
    shares = {c: await r.addresses(c) for c in FLEET}
    assert all(shares.values())
    assert sorted(a for s in shares.values() for a in s) == every_address(made)
    expected = allocation.allocate(every_address(made), allocation.Collectors.of(FLEET))
    assert {c: sorted(s) for c, s in shares.items()} == {c: sorted(s) for c, s in expected.items()}
    status, listed = await r.get()
    assert status == 200
    assert list(listed) == list(FLEET)
    for c in FLEET:
        assert [t["targets"][0] for t in listed[c]["targets"]] == shares[c]
        assert listed[c]["_link"] == f"/debug{PATH}?collector_id={c}"


async def test_an_unknown_collector_gets_an_empty_list_as_from_the_allocator() -> None:
    r = Route()
    r.put(*groups(3))
    assert await r.get(collector_id="nobody") == (200, [])
    assert await r.get(collector_id=["collector-1", "nobody"]) == (
        200,
        (await r.get(collector_id="collector-1"))[1],
    )


async def test_shares_follow_changes_and_only_new_groups_are_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = Route()
    r.put(*groups(10))
    before = {c: await r.addresses(c) for c in FLEET}
    split: list[bytes] = []
    real = allocation.split_fragment

    def counting(fragment: bytes, collectors: allocation.Collectors) -> tuple[bytes, ...]:
        split.append(fragment)
        return real(fragment, collectors)

    monkeypatch.setattr(allocation, "split_fragment", counting)
    for _ in range(3):  # no change: the shares are kept, nothing is split again
        assert {c: await r.addresses(c) for c in FLEET} == before
    assert split == []
    added = groups(1, first=10)
    r.put(*added)
    after = {c: await r.addresses(c) for c in FLEET}
    assert len(split) == 1  # only the new group
    assert sorted(a for s in after.values() for a in s) == every_address(groups(11))


async def test_cluster_narrows_a_share_and_shards_are_refused() -> None:
    r = Route()
    r.put(*groups(8), *groups(8, cluster="west", first=8))
    for c in FLEET:
        east = await r.addresses(c, cluster="east")
        west = await r.addresses(c, cluster="west")
        assert sorted(east + west) == sorted(await r.addresses(c))
    status, found = await r.get(collector_id="collector-0", shards="2", shard="0")
    assert status == 400, found


async def test_unknown_job_404_and_not_ready_503_as_http_sd() -> None:
    assert (await Route().get("/jobs/nope/targets", collector_id="collector-0"))[0] == 404
    assert (await Route(ready=False).get(collector_id="collector-0"))[0] == 503
    assert await Route().get("/jobs/empty/targets", collector_id="collector-0") == (200, [])


async def test_without_collectors_every_collector_gets_every_target() -> None:
    r = Route(collectors=())
    made = groups(5)
    r.put(*made)
    assert sorted(await r.addresses("any")) == every_address(made)
    assert list((await r.get())[1]) == ["sdstream"]


def test_concurrent_requests_share_one_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    r = Route()
    r.put(*groups(20))
    calls: list[int] = []
    real = target_allocator.share

    def counting(*args: Any) -> target_allocator.Shares:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(target_allocator, "share", counting)

    async def many() -> list[tuple[int, Any]]:
        return await asyncio.gather(*(r.get(collector_id=c) for c in FLEET * 4))

    assert all(status == 200 for status, _ in asyncio.run(many()))
    assert calls == [1]


async def test_shares_are_held_compressed_and_sent_gzipped_to_who_accepts_it() -> None:
    """A collector's share is held as deflate pieces, as the view holds its groups (an
    inflated copy per job asked was ~10x the view); a gzip client gets it compressed,
    the same document as anyone else."""
    r = Route()
    r.put(*groups(40))
    for query in ({"collector_id": ["collector-1"]}, {}):
        plain = await r.route(PATH, query=query, headers={})
        zipped = await r.route(PATH, query=query, headers={"accept-encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped.body) == plain.body
        assert orjson.loads(plain.body)
    held = r.route._shares[JOB]
    assert all(isinstance(piece[0], bytes) and piece[1] >= 0 for _, split in held.groups
               for piece in split)  # fmt: skip
    inflated = sum(piece[1] for _, split in held.groups for piece in split)
    packed = sum(len(piece[0]) for _, split in held.groups for piece in split)
    assert packed < inflated
