"""Monitor views pre-filter objects on their selector rules: the served groups are those
of the full build, for any pods, labels (sanitisation collisions included) and
selectors; a pre-filtered object holds nothing; a Service's labels decide, live, whether
an endpoints monitor job has targets."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.compactor import folds, monitor_views
from consumers.monitors import select
from schemas.monitors import MonitorsSettings
from schemas.topics import ObjectKey, Resource

NS = "team"
SETTINGS = MonitorsSettings.model_validate({})
KEYS = ("app", "a.b", "a_b", "a-b")
VALUES = ("x", "y", "")


def views_of(resource: Resource, monitor: dict[str, Any]) -> list[Any]:
    jobs = select.monitor_jobs(SETTINGS, "c1", resource, monitor)
    return [monitor_views.view_of(job) for job in jobs]


def pod(name: str, labels: dict[str, str], *, phase: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "uid": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "i:1", "ports": [
            {"name": "m", "containerPort": 9090}, {"name": "other", "containerPort": 1}]}]},
        "status": {"podIP": ip, "phase": phase},
    }  # fmt: skip


pods = st.builds(
    pod,
    name=st.sampled_from(("p0", "p1", "p2", "p3")),
    labels=st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3),
    phase=st.sampled_from(("Running", "Failed", "Succeeded", "")),
    ip=st.sampled_from(("10.0.0.1", "")),
)
expressions = st.fixed_dictionaries(
    {"key": st.sampled_from(KEYS),
     "operator": st.sampled_from(("In", "NotIn", "Exists", "DoesNotExist"))},
    optional={"values": st.lists(st.sampled_from(VALUES[:2]), min_size=1, max_size=2)},
).filter(lambda e: ("values" in e) == (e["operator"] in ("In", "NotIn")))  # fmt: skip
selectors = st.fixed_dictionaries(
    {},
    optional={"matchLabels": st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES[:2]),
                                             max_size=2),
              "matchExpressions": st.lists(expressions, max_size=2)},
)  # fmt: skip


def pod_monitor(selector: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "pm", "namespace": NS},
            "spec": {"selector": selector, "podMetricsEndpoints": [{"port": "m"}]}}  # fmt: skip


def both(view: Any) -> tuple[folds.Fold, folds.Fold]:
    """A fold with the pre-filtering view, and one with the same view building in full."""
    full = dataclasses.replace(view, prefilter=None)
    return folds.Fold([view]), folds.Fold([full])


@settings(max_examples=300, suppress_health_check=[HealthCheck.filter_too_much])
@given(selector=selectors, first=st.lists(pods, max_size=4), then=st.lists(pods, max_size=3))
def test_prefiltered_groups_equal_the_full_build(
    selector: dict[str, Any], first: list[dict[str, Any]], then: list[dict[str, Any]]
) -> None:
    (view,) = views_of(Resource.PODMONITORS, pod_monitor(selector))
    assert view.prefilter is not None  # the selector's rules (and the phase rule) qualify
    quick, full = both(view)
    for fold in (quick, full):
        for version, obj in enumerate([*first, *then]):
            body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(version)}}
            fold.apply("c1", Resource.PODS, ObjectKey(f"{NS}/{obj['metadata']['name']}"), body)
            if version + 1 == len(first):
                fold.rebuild()
        fold.rebuild()
    assert quick.groups == full.groups
    assert quick.totals == full.totals
    assert quick.discovered.keys() <= full.discovered.keys()


def test_a_sanitisation_collision_resolves_as_in_the_full_build() -> None:
    """`a.b` and `a_b` both give `__meta_kubernetes_pod_label_a_b`; the greatest key wins."""
    (view,) = views_of(Resource.PODMONITORS, pod_monitor({"matchLabels": {"a_b": "x"}}))
    quick, full = both(view)
    wins = pod("p0", {"a_b": "x", "a.b": "y"}, phase="Running", ip="10.0.0.1")
    loses = pod("p1", {"a_b": "y", "a.b": "x"}, phase="Running", ip="10.0.0.2")
    for fold in (quick, full):
        for obj in (wins, loses):
            fold.apply("c1", Resource.PODS, ObjectKey(f"{NS}/{obj['metadata']['name']}"), obj)
        fold.rebuild()
    assert quick.groups == full.groups
    assert [g.source for g in quick.groups.values()] == ["pod/team/p0"]


def test_a_prefiltered_object_holds_nothing() -> None:
    (view,) = views_of(Resource.PODMONITORS, pod_monitor({"matchLabels": {"app": "x"}}))
    quick, full = both(view)
    other = pod("p0", {"app": "y"}, phase="Running", ip="10.0.0.1")
    for fold in (quick, full):
        fold.apply("c1", Resource.PODS, ObjectKey(f"{NS}/p0"), other)
        fold.rebuild()
    assert quick.groups == full.groups == {}
    assert quick.discovered == {}
    assert quick.left_out.by_key == {}
    assert len(full.discovered) == 1  # the full build keeps it for the discovery page


def service(labels: dict[str, str], version: str) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": NS, "uid": "s", "labels": labels,
                         "resourceVersion": version},
            "spec": {"ports": [{"name": "http", "port": 80}]}}  # fmt: skip


ENDPOINTS = {
    "metadata": {"name": "web", "namespace": NS, "uid": "e", "resourceVersion": "1"},
    "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 80}]}],
}
SLICE = {
    "metadata": {"name": "web-abc", "namespace": NS, "uid": "es", "resourceVersion": "1",
                 "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}],
    "ports": [{"name": "http", "port": 80}],
}  # fmt: skip


@settings(max_examples=1, deadline=None)
@given(role=st.sampled_from(("Endpoints", "EndpointSlice")))
def test_a_service_label_change_flips_an_endpoints_monitor_job(role: str) -> None:
    monitor = {"metadata": {"name": "sm", "namespace": NS},
               "spec": {"selector": {"matchLabels": {"team": "a"}}, "serviceDiscoveryRole": role,
                        "endpoints": [{"port": "http"}]}}  # fmt: skip
    (view,) = views_of(Resource.SERVICEMONITORS, monitor)
    assert view.prefilter is not None
    fold = folds.Fold([view])
    resource, obj = (
        (Resource.ENDPOINTS, ENDPOINTS) if role == "Endpoints" else (Resource.ENDPOINTSLICES, SLICE)
    )
    fold.apply("c1", Resource.SERVICES, ObjectKey(f"{NS}/web"), service({"team": "b"}, "1"))
    fold.apply("c1", resource, ObjectKey(f"{NS}/{obj['metadata']['name']}"), obj)
    fold.rebuild()
    assert fold.groups == {}
    fold.apply("c1", Resource.SERVICES, ObjectKey(f"{NS}/web"), service({"team": "a"}, "2"))
    changes, _ = fold.rebuild()
    assert [c.group is not None for c in changes] == [True]
    (group,) = fold.groups.values()
    assert [t["__address__"] for t in group.targets] == ["10.0.0.1:80"]
    fold.apply("c1", Resource.SERVICES, ObjectKey(f"{NS}/web"), service({"team": "b"}, "3"))
    changes, _ = fold.rebuild()
    assert [c.group for c in changes] == [None]
    assert fold.groups == {}
