"""The OpenTelemetry Target Allocator's `/jobs` API, served from the HTTP SD view.

An OpenTelemetry collector set up for a Target Allocator (`target_allocator.endpoint`)
reads `/scrape_configs` (`consumers.sinks.scrape_configs`) and then, per job,
`/jobs/<job>/targets?collector_id=<its name>`. The shapes are the allocator's
(opentelemetry-operator `cmd/otel-allocator/internal/server/server.go`):

- `GET /jobs`: `{"<job>": {"_link": "/jobs/<url.QueryEscape(job)>/targets"}}` for every
  job with at least one target;
- `GET /jobs/<job>/targets?collector_id=<id>`: `[{"targets": ["<address>"], "labels":
  {...}}, ...]`, one object per target, which is exactly `/http_sd/<job>`'s document, so
  it is that answer (its cache, ETag, `?cluster=`, `shards=`/`shard=`);
- `GET /jobs/<job>/targets` without `collector_id`: `{"<collector>": {"_link": ...,
  "targets": [...]}}`, each collector with its share.

Without `monitors.target_allocator` sdstream allocates nothing: every collector gets every
target of a job (or its `shard=` of them), and the one collector listed is `sdstream`.
With it, each job's targets are shared among the configured collectors as the
allocator's `consistent-hashing` strategy shares them (`consumers.sinks.allocation`):
`collector_id=X` is X's share, the shares together are exactly the job's targets, each
target in one; an unknown `collector_id` gets `[]`, as from the allocator (which answers
`[]` for a collector it does not know). `?cluster=` narrows a share; `shards=` is
refused (400: the collectors are the shards). The shares are made in a worker thread,
once per change of the job (`HttpSd.generation`), reusing the split of every group whose
digest is unchanged, so a request between two changes only joins bytes.

`<job>` is percent-decoded once, as the allocator's router does, so
`serviceMonitor%2Fns%2Fapp%2F0` names `serviceMonitor/ns/app/0`. The labels served are
sdstream's final labels (after the job's relabel rules), not the allocator's
pre-relabel ones: the matching `/scrape_configs` carries no relabel rules, so the
collector applies none and scrapes what Prometheus would. Everything is also served
under `/ta` (`/ta/jobs`), so a collector's endpoint can be `<url>/ta`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, quote_plus, unquote_plus

import orjson

from consumers.sinks import allocation, deflated, http_sd, views
from consumers.sinks.scrape_configs import JSON_TYPE, TA_PREFIX
from schemas.topics import TargetKey

ROUTE: Final = "/jobs"
_TARGETS: Final = "/targets"
COLLECTOR: Final = "sdstream"


def link(job: str) -> str:
    """Go's `url.QueryEscape` (space as `+`, only `A-Za-z0-9-_.~` kept)."""
    return f"{ROUTE}/{quote_plus(job, safe='')}{_TARGETS}"


def jobs_document(counts: Mapping[str, int]) -> bytes:
    """`/jobs` from each job's number of targets."""
    return orjson.dumps({job: {"_link": link(job)} for job, n in counts.items() if n > 0}) + b"\n"


def wrap_targets(job: str, documents: Sequence[tuple[str, deflated.Deflated]]) -> deflated.Deflated:
    """The per-collector form of a job: each collector's document under its name (without
    allocation, the one collector `sdstream` with the whole job)."""
    parts = [deflated.plain(b"{")]
    for i, (collector, document) in enumerate(documents):
        debug = f"/debug{ROUTE}/{quote_plus(job, safe='')}{_TARGETS}?collector_id={collector}"
        head = orjson.dumps({"_link": debug})[:-1] + b',"targets":'
        parts += (deflated.plain((b"," if i else b"") + orjson.dumps(collector) + b":" + head),
                  document, deflated.plain(b"}"))  # fmt: skip
    parts.append(deflated.plain(b"}\n"))
    return deflated.joined(parts)


@dataclass(frozen=True, slots=True)
class Shares:
    """A job's targets shared among the collectors, as of one `HttpSd.generation`, held
    compressed as the view holds its groups (`deflated`): one piece per group and
    collector."""

    generation: int
    groups: Sequence[tuple[str, tuple[deflated.Piece, ...]]]  # by group key: (cluster, split)
    documents: Sequence[deflated.Deflated]  # per collector: its share's document
    splits: Mapping[bytes, tuple[deflated.Piece, ...]]  # by group digest, for the next change

    def document(self, index: int, clusters: frozenset[str] | None) -> deflated.Deflated:
        """Collector `index`'s share, of `clusters` only when given (a join: not on the
        event loop for a big job, since each piece's CRC is combined)."""
        if clusters is None:
            return self.documents[index]
        return deflated.json_array(s[index] for c, s in self.groups if c in clusters)


def share(
    groups: Mapping[TargetKey, views.Held],
    known: Mapping[bytes, tuple[deflated.Piece, ...]],
    collectors: allocation.Collectors,
    generation: int,
) -> Shares:
    """Share `groups` among `collectors`, splitting only groups not in `known`."""
    ordered = [groups[key] for key in sorted(groups)]
    splits = {h.digest: known.get(h.digest) or _split(h, collectors) for h in ordered}
    per_group = [(h.cluster, splits[h.digest]) for h in ordered]
    documents = [deflated.json_array(split[i] for _, split in per_group)
                 for i in range(len(collectors.names))]  # fmt: skip
    return Shares(generation, per_group, documents, splits)


def _split(held: views.Held, collectors: allocation.Collectors) -> tuple[deflated.Piece, ...]:
    return tuple(map(deflated.piece, allocation.split_fragment(held.fragment, collectors)))


def _clusters(query: Mapping[str, Sequence[str]]) -> frozenset[str] | None:
    """`?cluster=a&cluster=b` or `?cluster=a,b`, as HTTP SD reads it; None: every one."""
    names = frozenset(n for value in query.get("cluster", ()) for n in value.split(",") if n)
    return names or None


class TargetAllocator:
    """The `/jobs` (and `/ta/jobs`) route, over an `http_sd.HttpSd`."""

    def __init__(
        self,
        view: views.TargetView,
        http: http_sd.HttpSd,
        *,
        ready: Callable[[], bool] = lambda: True,
        collectors: Sequence[str] = (),
    ) -> None:
        self._view = view
        self._http = http
        self._ready = ready
        self._collectors = allocation.Collectors.of(collectors) if collectors else None
        self._shares: dict[str, Shares] = {}  # per job, the latest; only known jobs
        self._pending: dict[tuple[str, int], asyncio.Future[Shares]] = {}

    async def __call__(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> http_sd.PartsReply:
        rest = path.removeprefix(TA_PREFIX)
        if rest != ROUTE and not rest.startswith(ROUTE + "/"):
            return http_sd.json_reply(404, {"error": "not found"})
        inner = rest.removeprefix(ROUTE)
        if not inner or inner == "/":
            listing = await self._http(http_sd.PREFIX, query={}, headers={})
            if listing.status != 200:
                return listing
            counts = {job: self._view.counts(job)[1] for job in self._view.jobs()}
            return http_sd.PartsReply(200, (jobs_document(counts),), {"Content-Type": JSON_TYPE})
        return await self._targets(inner, query=query, headers=headers)

    async def _targets(
        self, inner: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> http_sd.PartsReply:
        """`/<job>/targets`: the job's HTTP SD answer, or its share among collectors."""
        if not inner.endswith(_TARGETS) or len(inner) <= len(_TARGETS) + 1:
            return http_sd.json_reply(404, {"error": "not found: /jobs/<job>/targets"})
        job = unquote_plus(inner[1 : -len(_TARGETS)])  # `link` escapes as Go's QueryEscape
        if self._collectors is not None:
            return await self._allocated(job, query, headers, self._collectors)
        asked = {k: v for k, v in query.items() if k != "collector_id"}
        path = f"{http_sd.PREFIX}/{quote(job, safe='')}"
        if "collector_id" in query:
            return await self._http(path, query=asked, headers=headers)
        found = await self._http.document(path, query=asked)
        if isinstance(found, http_sd.PartsReply):
            return found
        gzipped = deflated.accepts_gzip(headers.get("accept-encoding", ""))
        body = wrap_targets(job, [(COLLECTOR, found.body)])
        return http_sd.body_reply(body, {"Content-Type": JSON_TYPE}, gzipped=gzipped)

    async def _allocated(
        self,
        job: str,
        query: Mapping[str, Sequence[str]],
        asked: Mapping[str, str],
        collectors: allocation.Collectors,
    ) -> http_sd.PartsReply:
        """A job's targets shared among `collectors`: one's share, or each one's."""
        if not self._ready() or not self._view.known(job):  # 503 or 404, in HTTP SD's words
            return await self._http(f"{http_sd.PREFIX}/{quote(job, safe='')}", query={},
                                    headers={})  # fmt: skip
        if "shard" in query or "shards" in query:
            error = "shards: the collectors share the targets (monitors.target_allocator)"
            return http_sd.json_reply(400, {"error": error})
        shares = await self._current(job, collectors)
        clusters = _clusters(query)
        headers = {"Content-Type": JSON_TYPE}
        gzipped = deflated.accepts_gzip(asked.get("accept-encoding", ""))
        if "collector_id" in query:
            index = collectors.index(query["collector_id"][0])  # the allocator reads the first
            if index is None:
                return http_sd.PartsReply(200, (b"[]",), headers)
            document = await asyncio.to_thread(shares.document, index, clusters)
            return http_sd.body_reply(document, headers, gzipped=gzipped)

        def every() -> deflated.Deflated:
            names = collectors.names
            return wrap_targets(
                job, [(n, shares.document(i, clusters)) for i, n in enumerate(names)]
            )

        return http_sd.body_reply(await asyncio.to_thread(every), headers, gzipped=gzipped)

    async def _current(self, job: str, collectors: allocation.Collectors) -> Shares:
        """The job's shares as of its current generation: kept, joined, or made in a
        worker thread (one at a time per job and generation)."""
        generation = self._http.generation(job)
        found = self._shares.get(job)
        if found is not None and found.generation == generation:
            return found
        key = job, generation
        pending = self._pending.get(key)
        if pending is None:
            groups = self._view.groups(job)  # a copy: the reader mutates the view
            known = found.splits if found is not None else {}
            pending = asyncio.ensure_future(
                asyncio.to_thread(share, groups, known, collectors, generation)
            )
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._keep(job, key, done))
        return await asyncio.shield(pending)

    def _keep(self, job: str, key: tuple[str, int], done: asyncio.Future[Shares]) -> None:
        del self._pending[key]
        if done.cancelled() or done.exception() is not None:
            return
        made, kept = done.result(), self._shares.get(job)
        if kept is None or kept.generation < made.generation:
            self._shares[job] = made
        for gone in [j for j in self._shares if not self._view.known(j)]:
            del self._shares[gone]
