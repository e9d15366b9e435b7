"""`GET /scrape_configs`: the monitor jobs as Prometheus scrape_configs pointing at sdstream.

One job per monitor endpoint, named as prometheus-operator names it, with the scrape
parameters the operator would write (`consumers.monitors.scrape`) and, instead of its
kubernetes_sd config and relabel rules, one `http_sd_configs` entry reading the job's
final targets from sdstream (`<url>/http_sd/<percent-encoded job>`): sdstream has already
applied the rules, so the scraper needs none. Two shapes of one content:

- `scrape_configs:` YAML (default), for Prometheus's `scrape_config_files`, vmagent's
  `-promscrape.config` or any tool that writes it there;
- the Target Allocator's `{<job>: <scrape_config>}` JSON with `Accept: application/json`,
  and always under `/ta/scrape_configs`, which is what an OpenTelemetry collector whose
  `target_allocator.endpoint` is `<url>/ta` fetches (it sends no Accept header).

A job's parameters come from its monitor; when the clusters' copies of a monitor differ,
the first cluster by name decides, since one job has one scrape configuration. Such a job
is counted (`sdstream_sink_monitor_jobs_disagreeing`) and logged once when its clusters
start to disagree (naming the keys and the cluster whose values are used) and once when
they agree again, whenever the live jobs change (`update`), not only when someone asks.
Rendered YAML is kept per job (keyed by its parameters), so a change re-renders only the
jobs that changed, and the whole answer is cached until the next change (`invalidate`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import quote

import orjson
import yaml
from prometheus_client import Gauge

from consumers.monitors import select
from consumers.sinks.http_sd import PREFIX as HTTP_SD
from consumers.sinks.http_sd import PartsReply, json_reply
from schemas.scrape_configs import HttpSdClient

logger = logging.getLogger(__name__)

ROUTE: Final = "/scrape_configs"
TA_PREFIX: Final = "/ta"
YAML_TYPE: Final = "application/yaml"
JSON_TYPE: Final = "application/json"
_DUMPER: Final = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SD_AFTER: Final = ("job_name", "honor_labels", "honor_timestamps", "track_timestamps_staleness")


@dataclass(frozen=True, slots=True)
class Job:
    """One job's scrape parameters, per cluster whose monitor makes it."""

    name: str
    by_cluster: Mapping[str, Mapping[str, Any]]  # cluster -> `scrape.parameters` entry

    def chosen(self) -> tuple[Mapping[str, Any], bool]:
        """(the first cluster's parameters, whether another cluster's differ)."""
        ordered = [self.by_cluster[c] for c in sorted(self.by_cluster)]
        return ordered[0], any(p != ordered[0] for p in ordered[1:])

    def differing(self) -> tuple[str, ...]:
        """The parameter keys the clusters' copies disagree on (a key one copy leaves out
        and another sets counts), sorted; () when they agree."""
        return differing(self.by_cluster)


def differing(by_cluster: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """The keys whose values are not the same in every cluster's parameters."""
    copies = list(by_cluster.values())
    if len(copies) < 2:  # one copy cannot disagree
        return ()
    keys = {k for copy in copies for k in copy}
    missing = object()
    return tuple(
        sorted(k for k in keys if any(c.get(k, missing) != copies[0].get(k, missing)
                                      for c in copies[1:]))
    )  # fmt: skip


def disagreements(jobs: Iterable[Job]) -> dict[str, tuple[str, ...]]:
    """{job: the keys its clusters disagree on}, for the jobs whose clusters disagree."""
    return {job.name: keys for job in jobs if (keys := job.differing())}


def config(
    name: str, parameters: Mapping[str, Any], *, url: str, client: HttpSdClient
) -> dict[str, Any]:
    """The job as a scrape_config, keys in the operator's order, http_sd where it puts
    kubernetes_sd_configs."""
    sd = {"url": f"{url}{HTTP_SD}/{quote(name, safe='')}", **client.model_dump(exclude_none=True)}
    job: dict[str, Any] = {"job_name": name}
    job.update((k, parameters[k]) for k in _SD_AFTER[1:] if k in parameters)
    job["http_sd_configs"] = [sd]
    job.update((k, v) for k, v in parameters.items() if k not in _SD_AFTER)
    return job


def yaml_entry(job: Mapping[str, Any]) -> bytes:
    """One `- job_name: ...` list item, in the order given."""
    text: str = yaml.dump(
        [dict(job)], Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=1 << 16
    )
    return text.encode()


def yaml_document(entries: Iterable[bytes]) -> list[bytes]:
    parts = list(entries)
    if not parts:
        return [b"scrape_configs: []\n"]
    return [b"scrape_configs:\n", *parts]


def ta_document(jobs: Iterable[Mapping[str, Any]]) -> bytes:
    """The Target Allocator's `/scrape_configs`: `{job_name: scrape_config}`."""
    return orjson.dumps({job["job_name"]: job for job in jobs}) + b"\n"


class MonitorJobs(Protocol):
    """The live monitor jobs of this process (the sink's view of the monitor topics)."""

    def scrape_jobs(self) -> Sequence[Job]:
        """In the operator's order (ServiceMonitors, then PodMonitors, by namespace/name
        and endpoint index)."""
        ...


@dataclass(frozen=True)
class LiveJobs:
    """`MonitorJobs` over `live.LiveMonitors.jobs()` ({job: {cluster: MonitorJob}})."""

    jobs: Callable[[], Mapping[str, Mapping[str, select.MonitorJob]]]

    def scrape_jobs(self) -> Sequence[Job]:
        found = self.jobs()
        return [
            Job(name, {cluster: job.scrape for cluster, job in found[name].items()})
            for name in sorted(found, key=operator_order)
        ]


def operator_order(name: str) -> tuple[bool, str, str, int]:
    """ServiceMonitors first, then PodMonitors, by namespace, name and endpoint index
    (the operator's `appendServiceMonitorConfigs` / `appendPodMonitorConfigs`)."""
    kind, _, rest = name.partition("/")
    namespace, _, rest = rest.partition("/")
    monitor, _, index = rest.rpartition("/")
    return kind != "serviceMonitor", namespace, monitor, int(index) if index.isdigit() else -1


def default_url(host: str, port: int, *, tls: bool) -> str:
    """sdstream's own address when `monitors.scrape_configs.url` is not set: loopback for a
    wildcard host (set the URL when scrapers run elsewhere)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{host}:{port}"


@dataclass
class Document:
    """Both shapes, rendered from the jobs; per-job YAML kept across renders."""

    url: Callable[[], str]
    client: HttpSdClient
    _entries: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)  # job -> (key, yaml)
    conflicts: tuple[str, ...] = ()

    def render(self, jobs: Sequence[Job]) -> tuple[list[bytes], bytes]:
        """(YAML parts, TA JSON) of `jobs`."""
        configs, entries, conflicts, kept = [], [], [], {}
        url = self.url()
        for job in jobs:
            parameters, differ = job.chosen()
            if differ:
                conflicts.append(job.name)
            cfg = config(job.name, parameters, url=url, client=self.client)
            key = orjson.dumps(cfg, option=orjson.OPT_SORT_KEYS)
            cached = self._entries.get(job.name)
            entry = cached[1] if cached is not None and cached[0] == key else yaml_entry(cfg)
            kept[job.name] = (key, entry)
            configs.append(cfg)
            entries.append(entry)
        self._entries = kept
        self.conflicts = tuple(conflicts)
        return yaml_document(entries), ta_document(configs)


def wants_json(headers: Mapping[str, str]) -> bool:
    accept = headers.get("accept", "")
    return any(part.split(";")[0].strip() == JSON_TYPE for part in accept.split(","))


class ScrapeConfigs:
    """The `/scrape_configs` (and `/ta/scrape_configs`) route. A render (YAML of the jobs
    that changed, JSON of all) runs in a worker thread, one at a time, so many monitors
    never hold the event loop; requests during it wait for the same render."""

    def __init__(
        self,
        jobs: MonitorJobs,
        *,
        ready: Callable[[], bool],
        url: Callable[[], str],
        client: HttpSdClient,
        disagreeing: Gauge | None = None,
    ) -> None:
        self._jobs = jobs
        self._disagreeing = disagreeing
        self._disagree: dict[str, tuple[str, ...]] = {}
        self._ready = ready
        self._document = Document(url, client)
        self._answer: tuple[list[bytes], bytes] | None = None
        self._generation = 0  # bumped by invalidate: a render of older jobs is not kept
        self._pending: tuple[int, asyncio.Future[tuple[list[bytes], bytes]]] | None = None

    def invalidate(self) -> None:
        self._answer = None
        self._generation += 1

    async def update(self, jobs: frozenset[str]) -> None:
        """`invalidate` as a listener of monitor job changes, and count, and log, the jobs
        whose clusters disagree."""
        self.invalidate()
        self.check_disagreements()

    def check_disagreements(self) -> None:
        """Compare each live job's clusters (a dict comparison per job and cluster); log
        each job that starts or stops disagreeing, once, and set the gauge."""
        jobs = self._jobs.scrape_jobs()
        found = disagreements(jobs)
        first = {job.name: min(job.by_cluster) for job in jobs if job.name in found}
        for name, keys in found.items():
            if self._disagree.get(name) != keys:
                logger.warning(
                    "Monitor job %s: its clusters' monitors set different %s; "
                    "/scrape_configs uses cluster %s's (the first by name).",
                    name, ", ".join(keys), first[name],
                    extra={"job": name, "keys": list(keys), "cluster": first[name],
                           "reason": "clusters_disagree"},
                )  # fmt: skip
        for name in self._disagree.keys() - found.keys():
            logger.info("Monitor job %s: its clusters no longer disagree.", name,
                        extra={"job": name, "reason": "clusters_agree"})  # fmt: skip
        self._disagree = found
        if self._disagreeing is not None:
            self._disagreeing.set(len(found))

    @property
    def disagreeing(self) -> Mapping[str, tuple[str, ...]]:
        """{job: keys its clusters disagree on}, as of the last `update`."""
        return self._disagree

    @property
    def conflicts(self) -> tuple[str, ...]:
        return self._document.conflicts

    async def __call__(
        self, path: str, *, query: Mapping[str, Sequence[str]], headers: Mapping[str, str]
    ) -> PartsReply:
        ta = path == TA_PREFIX + ROUTE
        if path != ROUTE and not ta:
            return json_reply(404, {"error": "not found"})
        if not self._ready():
            return json_reply(503, {"error": "not caught up with the topics yet"})
        parts, ta_json = self._answer or await self._render()
        if ta or wants_json(headers):
            return PartsReply(200, (ta_json,), {"Content-Type": JSON_TYPE})
        return PartsReply(200, parts, {"Content-Type": YAML_TYPE})

    async def _render(self) -> tuple[list[bytes], bytes]:
        """The render of the current jobs: joined if under way, else started (after any
        render of older jobs, which share `Document`'s per-job cache)."""
        while self._pending is not None and self._pending[0] != self._generation:
            await asyncio.wait([self._pending[1]])
        if self._pending is None:
            generation, jobs = self._generation, self._jobs.scrape_jobs()  # on the loop
            render = asyncio.ensure_future(asyncio.to_thread(self._document.render, jobs))
            render.add_done_callback(lambda done: self._keep(done, generation))
            self._pending = generation, render
        return await asyncio.shield(self._pending[1])

    def _keep(self, done: asyncio.Future[tuple[list[bytes], bytes]], generation: int) -> None:
        self._pending = None
        if not done.cancelled() and done.exception() is None and generation == self._generation:
            self._answer = done.result()
