"""HTTP SD answers for Prometheus `http_sd_configs` (and vmagent, Alloy), from the view.

A request (path, query, headers) in, a `PartsReply` out; the socket is `sdstream.http`'s.

- `GET /http_sd/<job>[?cluster=a&cluster=b]`: the job's targets in HTTP SD format, one
  entry per target (the format cannot carry per-target labels), 200 with `[]` when a known
  job has none. Entries are sorted by group key, then by target, and labels by name, so
  the body, and its ETag, only change when the targets do; `If-None-Match` gives 304.
- `&shards=N&shard=I`: only the targets Prometheus's `hashmod` of `__address__` with
  modulus N puts in shard I, so N scrapers each fetch (and hold) their share instead of
  all of it and dropping the rest by relabeling. Bad values, or N above `max_shards`
  (default `schemas.config.MAX_SHARDS`): 400. Each group's targets are hashed once (the
  64-bit hash, not a split per N), so any N is a filter over the same index: a request's
  work grows with the job's targets, never with N.
- Unknown job: 404 (Prometheus counts a failure and keeps its last targets).
- Before the reader has caught up with the topic: 503 for everything, for the same
  reason: a partial list would make Prometheus drop live targets ("stale beats partial").
- `GET /http_sd`: the known jobs with their paths and sizes, for people and tooling.
- Encoding: the view holds each group's entries compressed (`deflated`), so a document
  is a list of segments. A client whose `Accept-Encoding` admits gzip gets them as they
  are, framed as one gzip member (`Content-Encoding: gzip`, ETag suffixed `-gzip`: no
  compression per request); any other gets them inflated one piece (~1 MiB) at a time as
  the server writes them, off the event loop, never the whole body at once. Prometheus's
  HTTP SD client sends no `Accept-Encoding` (prometheus/common's transport sets
  `DisableCompression`); vmagent's discovery client (Go's default transport) does.

Identity bodies: inflating a whole document per GET took ~8 ms of CPU for a 2.5 MiB one,
in ~1 MiB slices, each a hop to a worker thread and back through an event loop shared with
the fold (bench/README.md, session 9 latency). So an answer's identity body is kept once
made (`deflated.Inflated`, in the answer cache as a `lasting` entry: it holds true
whatever changes, since it names the segments it came from) and sent as it is to the next
client without gzip; after a change, the next render also makes the new body from it,
copying the data of every segment the two documents share and inflating only the changed
groups'. A body is kept only up to `1/IDENTITY_SHARE` of the cache budget; a larger
one is inflated slice by slice as the server writes it, as before, never held whole.

Answers are cached per (job, clusters, shard) in a byte-budgeted LRU
(`answer_cache.AnswerCache`) and dropped when the reader reports the job changed
(`invalidate`). Only the job's real clusters go into a key and the key's names count in
its cost, so a `?cluster=` of thousands of made-up names cannot hold more than the budget
says. A request between two changes costs a dict lookup. A miss is rendered in
a small thread pool from a copy of the job's groups (immutable `Held`s), never on the
event loop, so /healthz and the Kafka clients keep their loop while a big or hostile
answer is built; concurrent misses of one answer share one render, and beyond
`MAX_RENDERS` distinct renders under way a miss is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import orjson

from consumers.sinks import answer_cache, deflated, sink_metrics, views
from consumers.sinks.sd_json import fragment_entries, http_sd_document, http_sd_fragment
from schemas.config import MAX_SHARDS
from schemas.targets import TargetGroup
from schemas.topics import TargetKey

logger = logging.getLogger(__name__)

PREFIX = "/http_sd"
CONTENT_TYPE = "application/json"
DEFAULT_CACHE_BYTES = 128 << 20
# Renders at once, off the event loop. One: renders are pure Python and hold the GIL, so a
# second thread added no throughput, only more waits for the GIL on the event loop.
_WORKERS = 1
# Distinct renders running or waiting for a worker. One more miss is answered 503 with
# Retry-After (sdstream_sink_http_sd_busy_total) rather than queued: otherwise, after a
# change clears the cache, a scraper's miss waits behind every hostile one queued.
MAX_RENDERS = _WORKERS + 16
_BUSY_RETRY_S = 5
# An identity body is kept (and made whole) only up to this share of the cache budget:
# 32 MiB by default, ~30k pod targets. Larger ones stream, inflated a slice at a time.
IDENTITY_SHARE = 4
_LOG_BUSY_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class PartsReply:
    """A route's reply with its body in pieces (`sdstream.http.Answer`); the server's own
    replies (`sdstream.http.Reply`) have one body."""

    status: int
    # The body in pieces: a document is its groups' gzip members, or those inflated.
    parts: Iterable[bytes] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    # The body's length when `parts` are made as they are taken (inflated): the server
    # then takes them off the event loop and never sums them.
    size: int | None = None

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


def render(groups: Iterable[TargetGroup]) -> bytes:
    """The HTTP SD / file SD document of `groups`, in their order, targets sorted."""
    return b"".join(http_sd_document(map(http_sd_fragment, groups)))


def etag(held: Iterable[views.Held], *, salt: bytes = b"") -> str:
    """A tag of the groups a body is made of: hashing their digests, not a body of
    hundreds of MiB, at every change (`salt`: what else selects the body, e.g. a shard)."""
    tags = hashlib.blake2b(salt, digest_size=16)
    for group in held:
        tags.update(group.digest)
    return f'"{tags.hexdigest()}"'


def hash64(value: str) -> int:
    """What Prometheus's relabel `hashmod` takes the modulus of: the last 8 bytes of the
    MD5 of the value, big-endian."""
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big")


def hashmod(value: str, modulus: int) -> int:
    """Prometheus's relabel `hashmod`."""
    return hash64(value) % modulus


Shard = tuple[int, int]  # (shard, shards)


class BadQuery(ValueError):
    """A query parameter a client got wrong; answered 400 with the message."""


def _shard(query: Mapping[str, Sequence[str]], max_shards: int) -> Shard | None:
    """`shards=N&shard=I` (0 <= I < N <= max_shards), both or neither."""
    given = {name: query[name] for name in ("shard", "shards") if name in query}
    if not given:
        return None
    try:
        shard, shards = (int(given[name][-1]) for name in ("shard", "shards"))
    except (KeyError, ValueError) as exc:
        raise BadQuery("shard and shards go together, as integers") from exc
    if shards > max_shards:
        raise BadQuery(f"shards must be at most {max_shards}, got shards={shards}")
    if not 0 <= shard < shards:
        raise BadQuery(f"shard must be in 0..shards-1, got shard={shard} shards={shards}")
    return shard, shards


@dataclass(frozen=True, slots=True)
class Index:
    """A group fragment's entries as hashes and spans: what any `shards=N` needs, once."""

    hashes: array[int]  # hash64 of each entry's address, in fragment order
    ends: array[int]  # where each entry ends in the fragment (the next starts 1 after)


def index(fragment: bytes) -> Index:
    hashes, ends = array("Q"), array("I")  # 12 bytes a target
    end = -1
    for address, entry in fragment_entries(fragment):
        end += 1 + len(entry)
        hashes.append(hash64(address))
        ends.append(end)
    return Index(hashes, ends)


def shard_fragment(fragment: bytes, indexed: Index, shard: Shard) -> bytes:
    """The entries of `fragment` that `hashmod` puts in `shard`, comma-joined."""
    wanted, modulus = shard
    view = memoryview(fragment)
    start, kept = 0, []
    for hashed, end in zip(indexed.hashes, indexed.ends, strict=True):
        if hashed % modulus == wanted:
            kept.append(view[start:end])
        start = end + 1
    return b",".join(kept)


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match list with our (strong) tag."""
    candidates = (c.strip().removeprefix("W/") for c in if_none_match.split(","))
    return any(c in ("*", tag) for c in candidates)


def json_reply(status: int, document: object) -> PartsReply:
    """A small JSON answer (errors, listings) of any of the sinks' routes."""
    return PartsReply(status, (orjson.dumps(document) + b"\n",), {"Content-Type": CONTENT_TYPE})


def _clusters(
    query: Mapping[str, Sequence[str]], exists: Callable[[str], bool]
) -> tuple[str, ...] | None:
    """`?cluster=a&cluster=b` or `?cluster=a,b`, keeping only the clusters that `exists`
    (the job's): a name the job does not have selects nothing, and must not make a new
    cache key (a client could send thousands of them, changing one per request). None
    means every cluster; () a filter that matches none of the job's."""
    names = {name for value in query.get("cluster", ()) for name in value.split(",") if name}
    if not names:
        return None
    return tuple(sorted(name for name in names if exists(name)))


@dataclass(frozen=True, slots=True)
class Wanted:
    """A valid request for a known job's document."""

    job: str
    clusters: tuple[str, ...] | None  # None: every cluster; else the job's ones asked for
    shard: Shard | None

    @property
    def key(self) -> answer_cache.Key:
        return self.job, (self.clusters, self.shard)

    @property
    def identity_key(self) -> answer_cache.Key:
        """The key of the answer's identity body (`deflated.Inflated`)."""
        return self.job, ("identity", self.clusters, self.shard)

    @property
    def key_cost(self) -> int:
        """Bytes the key holds beyond `answer_cache.ENTRY_OVERHEAD`: its cluster names
        (each a str object and a tuple slot)."""
        names = self.clusters or ()
        return sum(sys.getsizeof(name) + 8 for name in names)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered document, as the answer cache keeps it: segments, ETag, cost."""

    body: deflated.Deflated
    tag: str  # of the identity body; the gzip one's is `gzip_tag(tag)`
    cost: int  # bytes it holds beyond the view's own segments


def gzip_tag(tag: str) -> str:
    """The ETag of a body's gzip form: a strong tag names one representation."""
    return tag[:-1] + '-gzip"'


def _reply(
    answer: Rendered, headers: Mapping[str, str], plain: deflated.Inflated | None = None
) -> PartsReply:
    """200 (or 304) with `answer`; `plain`, when given, is its identity body made whole."""
    gzipped = deflated.accepts_gzip(headers.get("accept-encoding", ""))
    tag = gzip_tag(answer.tag) if gzipped else answer.tag
    if matches(headers.get("if-none-match", ""), tag):
        return PartsReply(304, (), {"ETag": tag, "Vary": "Accept-Encoding"})
    if plain is not None and not gzipped and plain.source is answer.body:
        headers = {"Content-Type": CONTENT_TYPE, "ETag": tag, "Vary": "Accept-Encoding"}
        return PartsReply(200, (plain.body,), headers)
    return body_reply(answer.body, {"Content-Type": CONTENT_TYPE, "ETag": tag}, gzipped=gzipped)


def wants_identity(answer: Rendered, headers: Mapping[str, str]) -> bool:
    """Whether the reply to `headers` is `answer`'s identity body (not gzip, not 304)."""
    if deflated.accepts_gzip(headers.get("accept-encoding", "")):
        return False
    return not matches(headers.get("if-none-match", ""), answer.tag)


def body_reply(body: deflated.Deflated, headers: Mapping[str, str], *, gzipped: bool) -> PartsReply:
    """200 with `body`: its segments as they are, as one gzip member
    (`Content-Encoding: gzip`), or inflated piece by piece as the server writes them."""
    headers = {**headers, "Vary": "Accept-Encoding"}
    if gzipped:
        return PartsReply(200, body.gzip(), {**headers, "Content-Encoding": "gzip"})
    return PartsReply(200, deflated.Inflating(body.segments), headers, size=body.size)


class HttpSd:
    """The `/http_sd` route. `ready()` is false until the reader caught up."""

    def __init__(
        self,
        view: views.TargetView,
        *,
        ready: Callable[[], bool],
        max_shards: int = MAX_SHARDS,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        metrics: sink_metrics.SinkMetrics | None = None,
    ) -> None:
        self._view = view
        self._ready = ready
        self._max_shards = max_shards
        self._metrics = metrics
        # Answers, and identity bodies (`Wanted.identity_key`), in one budget.
        self._cache: answer_cache.AnswerCache[Rendered | deflated.Inflated] = (
            answer_cache.AnswerCache(cache_bytes)
        )
        self._evicted = 0  # evictions already counted in metrics
        self._generation: dict[str, int] = {}  # per job, bumped by invalidate
        # Renders under way, by answer and generation: a request after `invalidate` must
        # not join a render of the job as it was before.
        self._pending: dict[tuple[answer_cache.Key, int], asyncio.Future[Rendered]] = {}
        # Identity bodies being made apart from a render, by answer: the body they inflate
        # and the future of it. Counted with the renders against MAX_RENDERS.
        self._inflating: dict[
            answer_cache.Key, tuple[deflated.Deflated, asyncio.Future[deflated.Inflated]]
        ] = {}
        # Per job: each group's shard index by record digest. Bounded by the view (only
        # configured jobs, only live groups after each sharded render); holds no Held.
        self._indexes: dict[str, dict[bytes, Index]] = {}
        self._busy_logged = float("-inf")
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="http-sd")

    def invalidate(self, jobs: Iterable[str]) -> None:
        for job in jobs:
            self._cache.drop_job(job)
            self._generation[job] = self._generation.get(job, 0) + 1
        self._count()

    def generation(self, job: str) -> int:
        """Bumped by each `invalidate` of `job`: what else is made from the job's groups
        (the Target Allocator's shares) is current while this holds."""
        return self._generation.get(job, 0)

    async def update(self, jobs: frozenset[str]) -> None:
        """`invalidate` as a reader listener; list it first, it never yields."""
        self.invalidate(jobs)

    async def __call__(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> PartsReply:
        """Answer a GET of `path` (still percent-encoded); header names in lower case.
        A document not in the cache is rendered in a worker thread."""
        wanted = self._route(path, query)
        if isinstance(wanted, PartsReply):
            return wanted
        found = await self._found(wanted)
        if found is None:
            return self._busy()
        if not wants_identity(found, headers):
            return _reply(found, headers)
        return _reply(found, headers, await self._plain(wanted, found))

    async def document(
        self, path: str, *, query: Mapping[str, Sequence[str]]
    ) -> PartsReply | Rendered:
        """The document a GET of `path` asks for, or the reply saying why not."""
        wanted = self._route(path, query)
        if isinstance(wanted, PartsReply):
            return wanted
        found = await self._found(wanted)
        return self._busy() if found is None else found

    async def _found(self, wanted: Wanted) -> Rendered | None:
        found = self._cache.get(wanted.key)
        return found if isinstance(found, Rendered) else await self._render_shared(wanted)

    def answer(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> PartsReply:
        """`__call__`, rendering on the calling thread (tests, tools without a loop)."""
        wanted = self._route(path, query)
        if isinstance(wanted, PartsReply):
            return wanted
        found = self._cache.get(wanted.key)
        if not isinstance(found, Rendered):
            generation = self._generation.get(wanted.job, 0)
            found = self._build(wanted, self._view.groups(wanted.job))
            self._keep(wanted, found, generation)
        if not wants_identity(found, headers) or not self._fits(found):
            return _reply(found, headers)
        plain = self._kept_plain(wanted, peek=False)
        if plain is None or plain.source is not found.body:
            plain = deflated.inflated(found.body, plain)
            self._keep_plain(wanted, plain)
        return _reply(found, headers, plain)

    @property
    def cache_bytes(self) -> int:
        return self._cache.size

    def _route(self, path: str, query: Mapping[str, Sequence[str]]) -> PartsReply | Wanted:
        rest = path.removeprefix(PREFIX)
        if rest == path or (rest and not rest.startswith("/")):
            return json_reply(404, {"error": "not found"})
        if not self._ready():
            return json_reply(503, {"error": "not caught up with the targets topic yet"})
        job = unquote(rest[1:])
        if not job:
            return json_reply(200, self._jobs())
        if not self._view.known(job):
            return json_reply(404, {"error": "unknown job", "job": job, "jobs": self._view.jobs()})
        try:
            shard = _shard(query, self._max_shards)
        except BadQuery as exc:
            return json_reply(400, {"error": str(exc)})
        clusters = _clusters(query, lambda name: self._view.has_cluster(job, name))
        return Wanted(job, clusters, shard)

    async def _render_shared(self, wanted: Wanted) -> Rendered | None:
        """One render per answer (and job generation) at a time, however many requests
        wait for it; None when `MAX_RENDERS` other renders are under way."""
        generation = self._generation.get(wanted.job, 0)
        pending_key = wanted.key, generation
        pending = self._pending.get(pending_key)
        if pending is None:
            if len(self._pending) >= MAX_RENDERS:
                return None
            groups = self._view.groups(wanted.job)  # a copy: the reader mutates the view
            pending = asyncio.ensure_future(self._render(wanted, groups, generation))
            self._pending[pending_key] = pending
            pending.add_done_callback(lambda done: self._forget(pending_key, done))
        return await asyncio.shield(pending)

    def _forget(self, key: tuple[answer_cache.Key, int], done: asyncio.Future[Rendered]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]

    def _busy(self) -> PartsReply:
        if self._metrics is not None:
            self._metrics.http_sd_busy.inc()
        if time.monotonic() - self._busy_logged >= _LOG_BUSY_EVERY_S:
            self._busy_logged = time.monotonic()
            logger.warning(
                "Answered 503 to an HTTP SD miss: %d renders under way (MAX_RENDERS).",
                len(self._pending),
                extra={"reason": "max_renders"},
            )
        reply = json_reply(503, {"error": "too many answers being rendered, retry later"})
        return PartsReply(
            reply.status, reply.parts, {**reply.headers, "Retry-After": str(_BUSY_RETRY_S)}
        )

    async def _render(
        self, wanted: Wanted, groups: Mapping[TargetKey, views.Held], generation: int
    ) -> Rendered:
        """Render in the pool; with the answer's identity body too when one is kept (a
        client without gzip asked for it before), made from that one in the same trip to
        the worker: the next such client's GET is then a lookup."""
        running = asyncio.get_running_loop()
        base = self._kept_plain(wanted, peek=True)  # not a use: no LRU refresh
        answer, plain = await running.run_in_executor(
            self._pool, self._build_with, wanted, groups, base
        )
        self._keep(wanted, answer, generation)
        if plain is not None:
            self._keep_plain(wanted, plain)
        return answer

    def _build_with(
        self,
        wanted: Wanted,
        groups: Mapping[TargetKey, views.Held],
        base: deflated.Inflated | None,
    ) -> tuple[Rendered, deflated.Inflated | None]:
        answer = self._build(wanted, groups)
        if base is None or not self._fits(answer):
            return answer, None
        return answer, deflated.inflated(answer.body, base)

    def _fits(self, answer: Rendered) -> bool:
        """Whether `answer`'s identity body may be made whole and kept."""
        return answer.body.size <= self._cache.budget // IDENTITY_SHARE

    async def _plain(self, wanted: Wanted, found: Rendered) -> deflated.Inflated | None:
        """`found`'s identity body: kept, or made in the pool from the one kept (one make
        per body however many clients wait); None when it is too big to be made whole, or
        MAX_RENDERS renders and makes are under way: the reply then streams it inflated."""
        plain = self._kept_plain(wanted, peek=False)
        if plain is not None and plain.source is found.body:
            return plain
        making = self._inflating.get(wanted.identity_key)
        if making is None or making[0] is not found.body:
            if not self._fits(found) or len(self._pending) + len(self._inflating) >= MAX_RENDERS:
                return None
            making = found.body, asyncio.ensure_future(self._inflate(wanted, found, plain))
            self._inflating[wanted.identity_key] = making
        return await asyncio.shield(making[1])

    async def _inflate(
        self, wanted: Wanted, found: Rendered, base: deflated.Inflated | None
    ) -> deflated.Inflated:
        running = asyncio.get_running_loop()
        try:
            plain = await running.run_in_executor(self._pool, deflated.inflated, found.body, base)
        finally:
            if self._inflating.get(wanted.identity_key, (None,))[0] is found.body:
                del self._inflating[wanted.identity_key]
        self._keep_plain(wanted, plain)
        return plain

    def _kept_plain(self, wanted: Wanted, *, peek: bool) -> deflated.Inflated | None:
        kept = (self._cache.peek if peek else self._cache.get)(wanted.identity_key)
        return kept if isinstance(kept, deflated.Inflated) else None

    def _keep_plain(self, wanted: Wanted, plain: deflated.Inflated) -> None:
        """Keep an identity body, whatever the job's generation: it names the segments it
        came from (`_reply` serves it only with those), and lends the next one its data."""
        self._cache.put(wanted.identity_key, plain, plain.cost + wanted.key_cost, lasting=True)
        self._count()

    def _keep(self, wanted: Wanted, answer: Rendered, generation: int) -> None:
        """Cache `answer` unless its job changed while it was rendered."""
        if self._generation.get(wanted.job, 0) == generation:
            self._cache.put(wanted.key, answer, answer.cost + wanted.key_cost)
            self._count()

    def _count(self) -> None:
        if self._metrics is None:
            return
        self._metrics.cache_bytes.set(self._cache.size)
        self._metrics.cache_entries.set(len(self._cache))
        self._metrics.cache_evictions.inc(self._cache.evictions - self._evicted)
        self._evicted = self._cache.evictions

    def _build(self, wanted: Wanted, groups: Mapping[TargetKey, views.Held]) -> Rendered:
        """The document `wanted` asks for, from a job's groups (thread-safe: reads only
        immutable `Held`s and replaces the job's shard index in one store)."""
        ordered = [groups[key] for key in sorted(groups)]
        held = ordered
        if wanted.clusters is not None:
            wanted_clusters = frozenset(wanted.clusters)
            held = [h for h in ordered if h.cluster in wanted_clusters]
        if wanted.shard is None:
            body = views.packed_document(held)
            return Rendered(body, etag(held), sys.getsizeof(body.segments))
        indexes = self._shard_indexes(wanted.job, ordered)
        body = deflated.json_array(
            deflated.piece(shard_fragment(h.fragment, indexes[h.digest], wanted.shard))
            for h in held
        )
        cost = sys.getsizeof(body.segments) + sum(map(len, body.segments))  # commas shared
        return Rendered(body, etag(held, salt=b"%d/%d" % wanted.shard), cost)

    def _shard_indexes(self, job: str, ordered: list[views.Held]) -> dict[bytes, Index]:
        """The shard index of every group of `job`, computing only new groups' ones."""
        known = self._indexes.get(job, {})
        current = {}
        for held in ordered:
            found = known.get(held.digest)
            current[held.digest] = index(held.fragment) if found is None else found
        self._indexes[job] = current
        return current

    def _jobs(self) -> list[dict[str, object]]:
        jobs = []
        for job in self._view.jobs():
            groups, targets = self._view.counts(job)
            path = f"{PREFIX}/{quote(job, safe='')}"
            jobs.append({"job": job, "path": path, "groups": groups, "targets": targets})
        return jobs
