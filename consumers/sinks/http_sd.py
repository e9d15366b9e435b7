"""HTTP SD answers for Prometheus `http_sd_configs` (and vmagent, Alloy), from the view.

Pure: a request (path, query, headers) in, a `Reply` out; the socket is `sdstream.http`'s.

- `GET /http_sd/<job>[?cluster=a&cluster=b]`: the job's targets in HTTP SD format, one
  entry per target (the format cannot carry per-target labels), 200 with `[]` when a known
  job has none. Entries are sorted by group key, then by target, and labels by name, so
  the body, and its ETag, only change when the targets do; `If-None-Match` gives 304.
- `&shards=N&shard=I`: only the targets Prometheus's `hashmod` of `__address__` with
  modulus N puts in shard I, so N scrapers each fetch (and hold) their share instead of
  all of it and dropping the rest by relabeling. Bad values: 400. Each group's fragment
  is split by shard once (~2.4 us per target) and kept while the group is unchanged, so
  after a change only the changed groups are split again.
- Unknown job: 404 (Prometheus counts a failure and keeps its last targets).
- Before the reader has caught up with the topic: 503 for everything, for the same
  reason: a partial list would make Prometheus drop live targets ("stale beats partial").
- `GET /http_sd`: the known jobs with their paths and sizes, for people and tooling.

Bodies are cached per (job, clusters) and dropped when the reader reports the job
changed (`invalidate`); a request between two changes costs a dict lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import orjson

from consumers.sinks import view as views
from schemas.targets import TargetGroup, fragment_entries, http_sd_document, http_sd_fragment

PREFIX = "/http_sd"
CONTENT_TYPE = "application/json"
_CACHE_LIMIT = 1024  # ?cluster= and shard combinations are caller-chosen: bound what they pin


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    parts: Sequence[bytes] = ()  # the body in pieces: a document is its groups' fragments
    headers: Mapping[str, str] = field(default_factory=dict)

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


def hashmod(value: str, modulus: int) -> int:
    """Prometheus's relabel `hashmod`: the last 8 bytes of the MD5 of the value, big-endian,
    modulo `modulus`."""
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


Shard = tuple[int, int]  # (shard, shards)


class BadQuery(ValueError):
    """A query parameter a client got wrong; answered 400 with the message."""


def _shard(query: Mapping[str, Sequence[str]]) -> Shard | None:
    """`shards=N&shard=I` (0 <= I < N), both or neither."""
    given = {name: query[name] for name in ("shard", "shards") if name in query}
    if not given:
        return None
    try:
        shard, shards = (int(given[name][-1]) for name in ("shard", "shards"))
    except (KeyError, ValueError) as exc:
        raise BadQuery("shard and shards go together, as integers") from exc
    if not 0 <= shard < shards:
        raise BadQuery(f"shard must be in 0..shards-1, got shard={shard} shards={shards}")
    return shard, shards


def split_by_shard(fragment: bytes, modulus: int) -> list[bytes]:
    """A group's fragment cut into `modulus` fragments, the i-th holding the entries whose
    address `hashmod` puts in shard i (b"" for none)."""
    shards: list[list[bytes]] = [[] for _ in range(modulus)]
    for address, entry in fragment_entries(fragment):
        shards[hashmod(address, modulus)].append(entry)
    return [b",".join(entries) for entries in shards]


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match list with our (strong) tag."""
    candidates = (c.strip().removeprefix("W/") for c in if_none_match.split(","))
    return any(c in ("*", tag) for c in candidates)


def _json(status: int, document: object) -> Reply:
    return Reply(status, (orjson.dumps(document) + b"\n",), {"Content-Type": CONTENT_TYPE})


def _clusters(query: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """`?cluster=a&cluster=b` or `?cluster=a,b`; empty means every cluster."""
    names = {name for value in query.get("cluster", ()) for name in value.split(",") if name}
    return tuple(sorted(names))


class HttpSd:
    """The `/http_sd` route. `ready()` is false until the reader caught up."""

    def __init__(self, view: views.TargetView, *, ready: Callable[[], bool]) -> None:
        self._view = view
        self._ready = ready
        self._cache: dict[tuple[str, tuple[str, ...], Shard | None], tuple[list[bytes], str]]
        self._cache = {}
        # Per (job, modulus): each group's fragment split by shard, keyed by the group's
        # identity (a changed group is a new Held), so a change re-splits only itself. An
        # entry holds its Held, so no other Held can have that id while it is cached.
        self._splits: dict[tuple[str, int], dict[int, tuple[views.Held, list[bytes]]]] = {}

    def invalidate(self, jobs: Iterable[str]) -> None:
        gone = set(jobs)
        for cached in [k for k in self._cache if k[0] in gone]:
            del self._cache[cached]

    async def update(self, jobs: frozenset[str]) -> None:
        """`invalidate` as a reader listener; list it first, it never yields."""
        self.invalidate(jobs)

    def __call__(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> Reply:
        """Answer a GET of `path` (still percent-encoded); header names in lower case."""
        rest = path.removeprefix(PREFIX)
        if rest == path or (rest and not rest.startswith("/")):
            return _json(404, {"error": "not found"})
        if not self._ready():
            return _json(503, {"error": "not caught up with the targets topic yet"})
        job = unquote(rest[1:])
        if not job:
            return _json(200, self._jobs())
        return self._job(job, query=query, headers=headers)

    def _job(
        self, job: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> Reply:
        if not self._view.known(job):
            return _json(404, {"error": "unknown job", "job": job, "jobs": self._view.jobs()})
        try:
            shard = _shard(query)
        except BadQuery as exc:
            return _json(400, {"error": str(exc)})
        body, tag = self._body(job, _clusters(query), shard)
        if matches(headers.get("if-none-match", ""), tag):
            return Reply(304, (), {"ETag": tag})
        return Reply(200, body, {"Content-Type": CONTENT_TYPE, "ETag": tag})

    def _body(
        self, job: str, clusters: tuple[str, ...], shard: Shard | None
    ) -> tuple[list[bytes], str]:
        cached = self._cache.get((job, clusters, shard))
        if cached is None:
            held = self._view.held(job, clusters=clusters)
            if shard is None:
                cached = self._view.document_parts(job, clusters=clusters), etag(held)
            else:
                whole = self._view.held(job) if clusters else held  # a filter keeps the rest
                body = self._sharded(job, whole, held, shard)
                cached = body, etag(held, salt=b"%d/%d" % shard)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[job, clusters, shard] = cached
        return cached

    def _sharded(
        self, job: str, whole: list[views.Held], held: list[views.Held], shard: Shard
    ) -> list[bytes]:
        """`held`'s document for `shard`, refreshing the splits of the `whole` job."""
        index, modulus = shard
        known = self._splits.get((job, modulus), {})
        current: dict[int, tuple[views.Held, list[bytes]]] = {}
        for group in whole:
            split = known.get(id(group))
            if split is None:
                split = group, split_by_shard(group.fragment, modulus)
            current[id(group)] = split
        if len(self._splits) >= _CACHE_LIMIT:
            self._splits.clear()
        self._splits[job, modulus] = current
        return http_sd_document(current[id(group)][1][index] for group in held)

    def _jobs(self) -> list[dict[str, object]]:
        jobs = []
        for job in self._view.jobs():
            groups, targets = self._view.counts(job)
            path = f"{PREFIX}/{quote(job, safe='')}"
            jobs.append({"job": job, "path": path, "groups": groups, "targets": targets})
        return jobs
