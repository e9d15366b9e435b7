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
  "targets": [...]}}`. sdstream allocates nothing (every collector gets every target of
  a job, or its `shard=` of them), so the one collector listed is `sdstream`.

`<job>` is percent-decoded once, as the allocator's router does, so
`serviceMonitor%2Fns%2Fapp%2F0` names `serviceMonitor/ns/app/0`. The labels served are
sdstream's final labels (after the job's relabel rules), not the allocator's
pre-relabel ones: the matching `/scrape_configs` carries no relabel rules, so the
collector applies none and scrapes what Prometheus would. Everything is also served
under `/ta` (`/ta/jobs`), so a collector's endpoint can be `<url>/ta`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import quote, quote_plus, unquote_plus

import orjson

from consumers.sinks import deflated, http_sd, views
from consumers.sinks.scrape_configs import JSON_TYPE, TA_PREFIX

ROUTE: Final = "/jobs"
_TARGETS: Final = "/targets"
COLLECTOR: Final = "sdstream"


def link(job: str) -> str:
    """Go's `url.QueryEscape` (space as `+`, only `A-Za-z0-9-_.~` kept)."""
    return f"{ROUTE}/{quote_plus(job, safe='')}{_TARGETS}"


def jobs_document(counts: Mapping[str, int]) -> bytes:
    """`/jobs` from each job's number of targets."""
    return orjson.dumps({job: {"_link": link(job)} for job, n in counts.items() if n > 0}) + b"\n"


def wrap_targets(job: str, document: deflated.Deflated) -> deflated.Deflated:
    """The per-collector form of a job's HTTP SD document (as segments)."""
    debug = f"/debug{ROUTE}/{quote_plus(job, safe='')}{_TARGETS}?collector_id={COLLECTOR}"
    head = b'{"' + COLLECTOR.encode() + b'":' + orjson.dumps({"_link": debug})[:-1]
    return document.around(head + b',"targets":', b"}}\n")


class TargetAllocator:
    """The `/jobs` (and `/ta/jobs`) route, over an `http_sd.HttpSd`."""

    def __init__(self, view: views.TargetView, http: http_sd.HttpSd) -> None:
        self._view = view
        self._http = http

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
        if not inner.endswith(_TARGETS) or len(inner) <= len(_TARGETS) + 1:
            return http_sd.json_reply(404, {"error": "not found: /jobs/<job>/targets"})
        job = unquote_plus(inner[1 : -len(_TARGETS)])  # `link` escapes as Go's QueryEscape
        return await self._targets(job, query, headers)

    async def _targets(
        self, job: str, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> http_sd.PartsReply:
        asked = {k: v for k, v in query.items() if k != "collector_id"}
        path = f"{http_sd.PREFIX}/{quote(job, safe='')}"
        if "collector_id" in query:
            return await self._http(path, query=asked, headers=headers)
        found = await self._http.document(path, query=asked)
        if isinstance(found, http_sd.PartsReply):
            return found
        gzipped = deflated.accepts_gzip(headers.get("accept-encoding", ""))
        body = wrap_targets(job, found.body)
        return http_sd.body_reply(body, {"Content-Type": JSON_TYPE}, gzipped=gzipped)
