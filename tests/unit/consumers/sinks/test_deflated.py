"""Served as deflate segments, the same bytes: whatever the groups and their changes, the
inflated answer (and the gzip one, decompressed) is what the fragment renderer joins."""

from __future__ import annotations

import asyncio
import gzip
import random
import zlib
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.sinks import deflated, http_sd, sd_json, target_allocator
from consumers.sinks.http_sd import HttpSd, PartsReply
from consumers.sinks.views import TargetView
from schemas.targets import TargetGroup
from schemas.topics import TargetKey
from tests.unit.consumers.sinks import builders
from tests.unit.consumers.sinks.builders import key

_VALUES = st.sampled_from(["", "a", "é", '"', "\\", "x" * 40, '},{"labels":', "[fd00::1]:80"])
_ADDRESSES = st.sampled_from(
    [f"10.0.{i}.{j}:{p}" for i in range(2) for j in range(6) for p in (80, 9090)]
    + ["[fd00::1]:80", 'we"ird:1', "ü:2"]
)


@st.composite
def groups(draw: st.DrawFn) -> TargetGroup:
    """Groups of a few keys, 0 to 12 targets (both fragment paths), odd label values."""
    targets = draw(
        st.lists(
            st.fixed_dictionaries({"__address__": _ADDRESSES}, optional={"t": _VALUES}),
            max_size=12,
        )
    )
    return TargetGroup(
        job=draw(st.sampled_from(["web", "api"])),
        cluster=draw(st.sampled_from(["east", "west"])),
        source=f"pod/default/p-{draw(st.integers(0, 5))}",
        labels={"__meta_kubernetes_namespace": "default", "g": draw(_VALUES)},
        targets=targets,
    )


Change = tuple[TargetGroup, bool]  # the group, and whether its key is deleted instead


def _old_document(
    live: Mapping[TargetKey, TargetGroup], job: str, query: dict[str, list[str]]
) -> bytes:
    """What the sinks served before their fragments were kept compressed: the fragments of
    the job's groups by key (of the clusters asked), or their shard, joined."""
    clusters = set(query.get("cluster", ()))
    chosen = [
        live[k]
        for k in sorted(live)
        if live[k].job == job and (not clusters or live[k].cluster in clusters)
    ]
    fragments = [sd_json.http_sd_fragment(g) for g in chosen]
    if "shard" in query:
        shard = int(query["shard"][0]), int(query["shards"][0])
        fragments = [http_sd.shard_fragment(f, http_sd.index(f), shard) for f in fragments]
    return b"".join(sd_json.http_sd_document(fragments))


_QUERIES: list[dict[str, list[str]]] = [
    {},
    {"cluster": ["west"]},
    {"shard": ["1"], "shards": ["3"]},
    {"cluster": ["east"], "shard": ["0"], "shards": ["2"]},
]


@settings(max_examples=60, deadline=None)
@given(changes=st.lists(st.tuples(groups(), st.booleans()), min_size=1, max_size=12))
def test_the_answer_inflated_or_gzipped_is_the_old_renderers_bytes(changes: list[Change]) -> None:
    view = TargetView(configured=frozenset({"web", "api"}))
    sd = HttpSd(view, ready=lambda: True)
    live: dict[TargetKey, TargetGroup] = {}
    for group, delete in changes:
        k = key(group)
        sd.invalidate(view.apply(k, None if delete else group))
        if delete:
            live.pop(k, None)
        else:
            live[k] = group
        for job in ("web", "api"):
            for query in _QUERIES:
                expected = _old_document(live, job, query)
                plain = _get(sd, f"/http_sd/{job}", query, {})
                packed = _get(sd, f"/http_sd/{job}", query, {"accept-encoding": "gzip"})
                assert plain.body == expected
                # streamed (its size said) or the kept identity body, sent as it is
                assert plain.size in (None, len(expected))
                assert packed.headers["Content-Encoding"] == "gzip"
                assert gzip.decompress(packed.body) == expected
            assert view.document(job) == _old_document(live, job, {})


def _get(
    sd: HttpSd, path: str, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
) -> PartsReply:
    return sd.answer(path, query=query, headers=headers)


def test_the_gzip_answer_has_its_own_etag_and_304() -> None:
    view = TargetView()
    group = builders.group("web", "c", "p", "10.0.0.1:80")
    view.apply(key(group), group)
    sd = HttpSd(view, ready=lambda: True)
    plain = _get(sd, "/http_sd/web", {}, {})
    packed = _get(sd, "/http_sd/web", {}, {"accept-encoding": "gzip, deflate"})
    assert plain.headers["ETag"] != packed.headers["ETag"]
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == packed.headers["Vary"] == "Accept-Encoding"
    again = {"accept-encoding": "gzip", "if-none-match": packed.headers["ETag"]}
    assert _get(sd, "/http_sd/web", {}, again).status == 304
    assert _get(sd, "/http_sd/web", {}, {"if-none-match": packed.headers["ETag"]}).status == 200


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("", False),
        ("gzip", True),
        ("GZip;q=0.5", True),
        ("deflate, gzip;q=1.0, *;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("x-gzip", True),
        ("br, zstd", False),
        ("gzip;q=bad", False),
    ],
)
def test_accept_encoding(header: str, accepted: bool) -> None:
    assert deflated.accepts_gzip(header) is accepted


def test_inflating_holds_one_slice_at_a_time() -> None:
    piece = b"x" * 300_000
    slices = list(deflated.Inflating([deflated.segment(piece)] * 10))
    assert b"".join(slices) == piece * 10
    assert max(map(len, slices)) < deflated.SLICE + len(piece)
    assert len(slices) == 3


@given(parts=st.lists(st.binary(max_size=3000), max_size=8), data=st.binary(max_size=100))
def test_segments_make_one_gzip_member_with_the_combined_crc(
    parts: list[bytes], data: bytes
) -> None:
    body = deflated.json_array(deflated.piece(p) for p in parts).around(data, b"}")
    expected = data + b"[" + b",".join(p for p in parts if p) + b"]" + b"}"
    assert (body.size, body.crc) == (len(expected), zlib.crc32(expected))
    assert gzip.decompress(b"".join(body.gzip())) == expected
    assert b"".join(deflated.Inflating(body.segments)) == expected


def test_a_crc_combines_across_more_than_a_slice_of_zeros() -> None:
    first, second = b"a" * 10, b"b" * (deflated.SLICE * 2 + 5)
    combined = deflated.crc_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)


@given(st.binary(max_size=64), st.integers(0, 3 << 20), st.binary(max_size=64))
@settings(max_examples=40, deadline=None)
def test_a_crc_combines_at_every_length_either_way(first: bytes, zeros: int, end: bytes) -> None:
    """Short lengths run zeros through zlib, long ones multiply by a power of x: both are
    zlib's crc32_combine (wrapping a big document ran zeros over all of it, on the loop)."""
    second = bytes(zeros) + end
    combined = deflated.crc_combine(zlib.crc32(first), zlib.crc32(second), len(second))
    assert combined == zlib.crc32(first + second)


def test_the_allocators_collector_form_is_the_same_gzipped_or_not() -> None:
    view = TargetView()
    group = builders.group("web", "c", "p", "10.0.0.1:80")
    view.apply(key(group), group)
    sd = HttpSd(view, ready=lambda: True)
    ta = target_allocator.TargetAllocator(view, sd)

    async def both() -> tuple[PartsReply, PartsReply]:
        path = "/jobs/web/targets"
        plain = await ta(path, query={}, headers={})
        packed = await ta(path, query={}, headers={"accept-encoding": "gzip"})
        return plain, packed

    plain, packed = asyncio.run(both())
    assert plain.body.startswith(b'{"sdstream":{"_link":')
    assert plain.size == len(plain.body)
    assert gzip.decompress(packed.body) == plain.body
    assert packed.headers["Content-Encoding"] == "gzip"


@given(
    before=st.lists(st.binary(max_size=2000), max_size=8),
    after=st.lists(st.binary(max_size=2000), max_size=8),
)
def test_an_inflated_body_is_the_whole_inflated_whatever_it_reuses(
    before: list[bytes], after: list[bytes]
) -> None:
    """The next body copies the data of segments it shares with the last (equal bytes, the
    same objects or not) and inflates the rest: the same bytes as inflating it all."""
    segments = {data: deflated.piece(data) for data in before + after}
    old = deflated.json_array(segments[data] for data in before)
    new = deflated.json_array(segments[data] for data in after)
    previous = deflated.inflated(old)
    made = deflated.inflated(new, previous)
    assert previous.body == b"".join(deflated.Inflating(old.segments))
    assert made.body == b"".join(deflated.Inflating(new.segments))
    assert made.source is new
    for one in made.spans:
        start, end = made.span(one) or (0, -1)
        assert made.body[start:end] == deflated.inflate(one)


def test_a_segment_is_reused_by_its_bytes_not_by_its_place() -> None:
    first = deflated.json_array([deflated.piece(b'{"a":1}'), deflated.piece(b'{"b":2}')])
    second = deflated.json_array([deflated.piece(b'{"c":3}'), deflated.piece(b'{"b":2}')])
    made = deflated.inflated(second, deflated.inflated(first))
    assert made.body == b'[{"c":3},{"b":2}]'


def test_a_kept_body_counts_the_segments_it_was_made_from() -> None:
    """A kept identity body outlives its job's changes and then holds the only reference
    to the old segments: the cache must charge them, or its byte bound does not hold."""
    source = deflated.joined(deflated.plain(random.Random(i).randbytes(4000)) for i in range(8))
    made = deflated.inflated(source)
    assert made.cost >= len(made.body) + sum(map(len, source.segments))
