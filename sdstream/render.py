"""`sdstream render`: print the target groups Prometheus would discover for a snapshot.

Reads one `kubernetes_sd_configs` entry (`--config`) or one whole `scrape_configs` entry
(`--job`: its relabel_configs applied, final targets printed, docs/relabeling.md), YAML or
JSON, and Kubernetes objects (a `kubectl get -o json` List, a JSON array, or `-` for
stdin). Bad input exits 2 with the object's kind/namespace/name, the JSON position, or
the config field path.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import pydantic
import yaml

from consumers import render
from consumers.compactor import jobs
from consumers.relabel import groups as relabeling
from consumers.sinks.sd_json import http_sd_entries
from schemas.sd_config import KubernetesSDConfig, ScrapeJob
from schemas.targets import Group


class InputError(Exception):
    """Bad config or objects: printed as one line, exit status 2."""


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: {exc}") from exc


def _problems(exc: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
    )


def read_job(
    path: Path, *, own_namespace: str | None
) -> tuple[ScrapeJob, tuple[jobs.JobView, ...]]:
    """One scrape_configs entry and its compiled views (relabel rules included)."""
    try:
        job = ScrapeJob.model_validate(_read_yaml(path))
        return job, jobs.compile_job(job, own_namespace=own_namespace)
    except pydantic.ValidationError as exc:
        raise InputError(f"{path}: {_problems(exc)}") from exc
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc


def relabeled(groups: list[Group], view: jobs.JobView) -> list[Group]:
    """The groups as served: relabeled when the job has rules, all-dropped ones left out."""
    if not view.rules:
        return groups
    out = []
    for group in groups:
        done = relabeling.relabel(
            group.labels, group.targets, view.rules, keep_meta=view.keep_meta,
            defaults=view.defaults,
        )  # fmt: skip
        if done is not None:
            out.append(Group(group.source, *done))
    return out


def job_groups(views: tuple[jobs.JobView, ...], items: list[Any]) -> list[Group]:
    """The final groups of a job's views for a snapshot; RenderError for a bad object."""
    loaded = render.load(items)
    return [g for v in views for g in relabeled(render.render(loaded.objects, v), v)]


def run_job(*, job: Path, objects: str, own_namespace: str | None, fmt: str) -> int:
    try:
        scrape_job, views = read_job(job, own_namespace=own_namespace)
        groups = job_groups(views, read_objects(objects))
    except (InputError, render.RenderError) as exc:
        print(f"sdstream render: {exc}", file=sys.stderr)
        return 2
    watching = {f for sd in scrape_job.kubernetes_sd_configs for f in sd.watching_fields}
    if watching:
        fields = ", ".join(sorted(watching))
        print(f"sdstream render: {fields}: handled by the producer, ignored here", file=sys.stderr)
    document = native(groups) if fmt == "native" else http_sd(groups)
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def read_config(
    path: Path, *, own_namespace: str | None
) -> tuple[KubernetesSDConfig, jobs.JobView]:
    raw = _read_yaml(path)
    try:
        config = KubernetesSDConfig.model_validate(raw)
        job = ScrapeJob(job_name="render", kubernetes_sd_configs=(config,))
        return config, jobs.compile_job(job, own_namespace=own_namespace)[0]
    except pydantic.ValidationError as exc:
        raise InputError(f"{path}: {_problems(exc)}") from exc
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from exc


def read_objects(source: str) -> list[Any]:
    data = sys.stdin.buffer.read() if source == "-" else _read_bytes(Path(source))
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InputError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    if isinstance(parsed, dict) and isinstance(parsed.get("items"), list):
        return list(parsed["items"])
    if isinstance(parsed, list):
        return parsed
    raise InputError(f"{source}: expected a List with items or a JSON array of objects")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc


def native(groups: list[Group]) -> list[dict[str, Any]]:
    return [{"source": g.source, "labels": g.labels, "targets": g.targets} for g in groups]


def http_sd(groups: list[Group]) -> list[dict[str, object]]:
    return [entry for g in groups for entry in http_sd_entries(g)]


def run(*, config: Path, objects: str, own_namespace: str | None, fmt: str) -> int:
    try:
        sd_config, view = read_config(config, own_namespace=own_namespace)
        loaded = render.load(read_objects(objects))
        groups = render.render(loaded.objects, view)
    except (InputError, render.RenderError) as exc:
        print(f"sdstream render: {exc}", file=sys.stderr)
        return 2
    if sd_config.watching_fields:
        fields = ", ".join(sorted(sd_config.watching_fields))
        print(f"sdstream render: {fields}: handled by the producer, ignored here", file=sys.stderr)
    document = native(groups) if fmt == "native" else http_sd(groups)
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return 0
