"""ServiceMonitors and PodMonitors against the real API server and broker: a cluster
without the operator's CRDs is ready without them (said once), and CRDs installed later
are picked up, their monitors published trimmed, keyed namespace/name."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from schemas import events
from schemas.topics import Resource, object_topic
from sdstream.devstack import build, cache
from tests.integration import kafka_helpers
from tests.integration.test_producer import records_until, running, settings_for, wait_for

MONITORS = (Resource.SERVICEMONITORS, Resource.PODMONITORS)
KINDS = {Resource.SERVICEMONITORS: "ServiceMonitor", Resource.PODMONITORS: "PodMonitor"}


def _served(dynamic: DynamicClient) -> bool:
    try:
        for kind in KINDS.values():
            dynamic.resources.get(api_version="monitoring.coreos.com/v1", kind=kind)
    except ResourceNotFoundError:
        dynamic.resources.invalidate_cache()
        return False
    return True


def _install_crds(kube_api: client.ApiClient) -> None:
    with cache.build_lock(cache.cache_dir()):
        crds = build.ensure_monitoring_crds(cache.cache_dir())
    ext = client.ApiextensionsV1Api(kube_api)
    for resource in MONITORS:
        doc = yaml.safe_load((crds / f"monitoring.coreos.com_{resource}.yaml").read_text())
        ext.create_custom_resource_definition(doc)


async def _uninstall_crds(kube_api: client.ApiClient, dynamic: DynamicClient) -> None:
    ext = client.ApiextensionsV1Api(kube_api)
    names = [f"{resource.value}.monitoring.coreos.com" for resource in MONITORS]
    for name in names:
        with contextlib.suppress(ApiException):  # 404: not installed
            ext.delete_custom_resource_definition(name)
    async with asyncio.timeout(60):
        while any(_crd_exists(ext, name) for name in names):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    dynamic.resources.invalidate_cache()


def _crd_exists(ext: client.ApiextensionsV1Api, name: str) -> bool:
    try:
        ext.read_custom_resource_definition(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _monitor(resource: Resource, namespace: str, name: str) -> dict[str, Any]:
    endpoint: dict[str, Any] = {
        "port": "web",
        "interval": "15s",
        "bearerTokenSecret": {"name": "token", "key": "t"},
        "proxyUrl": "http://user:secret@proxy.example:3128",
        "relabelings": [{"action": "replace", "sourceLabels": ["a"], "targetLabel": "b"}],
    }
    field = "endpoints" if resource is Resource.SERVICEMONITORS else "podMetricsEndpoints"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": KINDS[resource],
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "sampleLimit": 7, field: [endpoint]},
    }


async def test_absent_monitor_crds_are_said_once_and_picked_up_when_installed(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    dynamic = DynamicClient(kube_api)
    await _uninstall_crds(kube_api, dynamic)  # another test of this session may have them
    caplog.set_level(logging.INFO)
    settings = settings_for(
        kafka_bootstrap, kubeconfig, prefix=topic_prefix, namespace=namespace,
        resources=(Resource.PODS, *MONITORS),
    )  # fmt: skip
    async with running(settings, absent_recheck_s=0.2) as run:
        # Ready without them (running() waited for it), and said once per resource.
        for resource in MONITORS:
            assert (
                run.sample(
                    "sdstream_producer_errors_total", resource=resource.value, kind="NotServed"
                )
                >= 1
            )
        _install_crds(kube_api)
        async with asyncio.timeout(30):
            while not _served(dynamic):  # noqa: ASYNC110  # the API server's discovery
                await asyncio.sleep(0.2)
        for resource in MONITORS:
            dynamic.resources.get(
                api_version="monitoring.coreos.com/v1", kind=KINDS[resource]
            ).create(body=_monitor(resource, namespace, "web"), namespace=namespace)
        for resource in MONITORS:
            topic = object_topic(topic_prefix, "c1", resource)
            (record,) = await records_until(kafka_bootstrap, topic, bool)
            assert record.key == f"{namespace}/web".encode()
            assert record.value is not None
            spec = events.decode(record.value).object["spec"]
            assert spec["selector"] == {"matchLabels": {"app": "web"}}
            (endpoint,) = spec[
                "endpoints" if resource is Resource.SERVICEMONITORS else "podMetricsEndpoints"
            ]
            assert endpoint["port"] == "web"
            assert endpoint["relabelings"][0]["targetLabel"] == "b"
            # Which Secret holds the token is kept (for /scrape_configs' file references,
            # docs/monitors.md); a Secret's value never reaches Kafka (the producer reads none).
            assert endpoint["bearerTokenSecret"] == {"name": "token", "key": "t"}
            assert "proxyUrl" not in endpoint  # may carry credentials: never kept
            assert spec["sampleLimit"] == 7  # a scrape parameter /scrape_configs serves
        await wait_for(lambda: run.producer.readiness.ready)
    said = [r.getMessage() for r in caplog.records if "not served" in r.getMessage()]
    assert sorted(m.split(" ")[0] for m in said) == ["podmonitors", "servicemonitors"]
    # Absence is no error. (A watch started just as the CRD appears may get one 429
    # "storage is (re)initializing" from the API server: a warning, retried.)
    assert not [
        r for r in caplog.records if r.name.startswith("producers") and r.levelno >= logging.ERROR
    ]
    assert (
        await kafka_helpers.read_all(
            kafka_bootstrap, object_topic(topic_prefix, "c1", Resource.PODS)
        )
        == []
    )
