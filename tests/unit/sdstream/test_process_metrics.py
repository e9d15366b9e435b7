"""Process, platform and GC collectors and `sdstream_build_info`: on the injected
registry, once however many servers share it, and on /metrics."""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CollectorRegistry

from schemas.config import HttpSettings
from sdstream import http, process_metrics
from tests.unit.consumers.sinks.http_client import fetch

LOOPBACK = HttpSettings(host="127.0.0.1", port=0)


def test_registering_twice_on_one_registry_is_harmless() -> None:
    registry = CollectorRegistry()
    process_metrics.register(registry)
    process_metrics.register(registry)

    labels = {"version": metadata.version("sdstream"), "pythonversion": platform.python_version()}
    assert registry.get_sample_value("sdstream_build_info", labels) == 1
    assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
    assert registry.get_sample_value("python_info", {
        "implementation": platform.python_implementation(), "major": "3",
        "minor": str(__import__("sys").version_info.minor),
        "patchlevel": str(__import__("sys").version_info.micro),
        "version": platform.python_version(),
    }) == 1  # fmt: skip
    assert (
        registry.get_sample_value("python_gc_objects_collected_total", {"generation": "0"})
        is not None
    )


def test_a_registry_of_its_own_gets_its_own_collectors() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    process_metrics.register(first)
    process_metrics.register(second)
    assert second.get_sample_value("process_open_fds") is not None


async def test_every_server_exposes_them_on_metrics() -> None:
    async with http.HttpServer(
        LOOPBACK, registry=CollectorRegistry(), ready=lambda: None
    ) as server:
        text = (await fetch(server.address, path="/metrics")).body.decode()
    assert f'sdstream_build_info{{pythonversion="{platform.python_version()}",version="' in text
    assert "process_cpu_seconds_total " in text
    assert "python_gc_collections_total{" in text
