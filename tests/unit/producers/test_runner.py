from __future__ import annotations

from producers import runner
from producers.kubeapi.api import Scope
from producers.watcher import Watch
from schemas.config import ProducerSettings
from schemas.topics import Resource


def test_one_watch_per_resource_cluster_wide() -> None:
    plan = runner.watches(ProducerSettings(cluster="c", label_selector="a=b"))
    assert {w.resource for w in plan} == set(Resource)
    assert len(plan) == len(Resource)
    by = {w.resource: w.scope for w in plan}
    assert by[Resource.PODS] == Scope(None, "a=b", None)
    assert by[Resource.NAMESPACES] == Scope(None, None, None)  # never filtered, like Prometheus
    assert by[Resource.REPLICASETS] == Scope()


def test_namespaces_multiply_namespaced_watches_only() -> None:
    settings = ProducerSettings(
        cluster="c", resources=(Resource.PODS, Resource.NODES), namespaces=("a", "b")
    )
    plan = runner.watches(settings)
    assert sorted((w.resource.value, w.scope.namespace or "") for w in plan) == [
        ("nodes", ""),
        ("pods", "a"),
        ("pods", "b"),
    ]


def test_ready_once_every_watch_listed_or_while_standing_by() -> None:
    a, b = Watch(Resource.PODS, Scope("a")), Watch(Resource.PODS, Scope("b"))
    readiness = runner.Readiness(expected=frozenset({a, b}))
    assert not readiness.ready
    readiness.mark(a)
    assert not readiness.ready
    readiness.mark(b)
    assert readiness.ready
    assert runner.Readiness(standby=True).ready
    assert not runner.Readiness().ready
