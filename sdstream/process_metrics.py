"""What every sdstream process says about itself on /metrics: prometheus-client's
process, platform and GC collectors, and `sdstream_build_info` (after Prometheus's own
`prometheus_build_info`: a gauge of 1 whose labels name the build), so dashboards and
alerts written for any Prometheus client (`process_resident_memory_bytes`,
`python_info`...) work unchanged and a fleet's versions can be counted.

On the injected registry, once per registry: tests and the one-command demo build
several servers on one registry, and a second registration would raise.
"""

from __future__ import annotations

import platform
import weakref
from importlib import metadata

from prometheus_client import (
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.registry import CollectorRegistry

_registered: weakref.WeakSet[CollectorRegistry] = weakref.WeakSet()


def version() -> str:
    """sdstream's version as installed (package metadata), or "unknown" when run from a
    tree that was never installed."""
    try:
        return metadata.version("sdstream")
    except metadata.PackageNotFoundError:
        return "unknown"


def register(registry: CollectorRegistry) -> None:
    """Add the collectors and `sdstream_build_info` to `registry`, unless done before."""
    if registry in _registered:
        return
    _registered.add(registry)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Gauge(
        "sdstream_build_info",
        "A metric with a constant '1' value labeled by the sdstream version and the "
        "Python version it runs on.",
        ("version", "pythonversion"),
        registry=registry,
    ).labels(version(), platform.python_version()).set(1)
