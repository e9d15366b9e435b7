"""The fold: incremental rebuilds agree with a rebuild from scratch, whatever the order."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.compactor import folds, state
from consumers.compactor.jobs import compile_jobs
from schemas import events as object_events
from schemas.sd_config import ScrapeJob
from schemas.topics import ObjectKey, Resource

JOBS = [
    ScrapeJob.model_validate(
        {"job_name": "pods", "kubernetes_sd_configs": [
            {"role": "pod", "attach_metadata": {"node": True, "namespace": True}}]}
    ),
    ScrapeJob.model_validate(
        {"job_name": "slices", "kubernetes_sd_configs": [{"role": "endpointslice"}]}
    ),
    ScrapeJob.model_validate(
        {"job_name": "nodes", "cluster_label": "k8s_cluster",
         "kubernetes_sd_configs": [{"role": "node"}]}
    ),
]  # fmt: skip
VIEWS = compile_jobs(JOBS)

Event = tuple[str, Resource, ObjectKey, dict[str, Any] | None]


def pod(ns: str, name: str, *, ip: str, node: str, version: int) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}",
                     "resourceVersion": str(version), "labels": {"app": name}},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1",
                 "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"podIP": ip, "phase": "Running"},
    }  # fmt: skip


def node(name: str, *, ip: str, version: int) -> dict[str, Any]:
    return {
        "kind": "Node",
        "metadata": {"name": name, "resourceVersion": str(version), "labels": {"zone": ip[-1]}},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}},
    }  # fmt: skip


def slice_(ns: str, name: str, *, pods: list[str], version: int) -> dict[str, Any]:
    return {
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": str(version),
                     "labels": {"kubernetes.io/service-name": "svc"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.0.0.{i + 1}"], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": p, "namespace": ns}}
                      for i, p in enumerate(pods)],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }  # fmt: skip


def namespace(name: str, *, team: str, version: int) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {
        "name": name, "resourceVersion": str(version), "labels": {"team": team}}}  # fmt: skip


NAMESPACES = ["a", "b"]
PODS = ["p0", "p1", "p2"]
NODES = ["n0", "n1"]


@st.composite
def events(draw: st.DrawFn) -> Event:
    version = draw(st.integers(1, 10_000))
    kind = draw(st.sampled_from(["pod", "node", "slice", "ns"]))
    gone = draw(st.booleans()) and draw(st.booleans())  # deletes a quarter of the time
    cluster = draw(st.sampled_from(["c1", "c2"]))
    ns = draw(st.sampled_from(NAMESPACES))
    if kind == "pod":
        name = draw(st.sampled_from(PODS))
        ip = draw(st.sampled_from(["", "10.1.0.1", "10.1.0.2"]))
        obj = pod(ns, name, ip=ip, node=draw(st.sampled_from(NODES)), version=version)
        return cluster, Resource.PODS, ObjectKey(f"{ns}/{name}"), None if gone else obj
    if kind == "node":
        name = draw(st.sampled_from(NODES))
        obj = node(name, ip=draw(st.sampled_from(["10.2.0.1", "10.2.0.2"])), version=version)
        return cluster, Resource.NODES, ObjectKey(name), None if gone else obj
    if kind == "ns":
        obj = namespace(ns, team=draw(st.sampled_from(["x", "y"])), version=version)
        return cluster, Resource.NAMESPACES, ObjectKey(ns), None if gone else obj
    members = draw(st.lists(st.sampled_from(PODS), max_size=3, unique=True))
    obj = slice_(ns, "s0", pods=members, version=version)
    return cluster, Resource.ENDPOINTSLICES, ObjectKey(f"{ns}/s0"), None if gone else obj


def numbered(log: list[Event]) -> list[Event]:
    """A resourceVersion names one state of one object, as on a real API server."""
    out: list[Event] = []
    for version, (cluster, resource, key, obj) in enumerate(log, start=1):
        if obj is not None:
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(version)}}
        out.append((cluster, resource, key, obj))
    return out


def incremental(log: list[Event], *, every: int = 1, cache: int = state.PARSED_CACHE) -> folds.Fold:
    f = folds.Fold(VIEWS, parsed=state.ParseCache(size=cache))
    for i, event in enumerate(log):
        f.apply(*event)
        if i % every == 0:
            f.rebuild()
    f.rebuild()
    return f


def from_scratch(log: list[Event]) -> folds.Fold:
    final: dict[tuple[str, Resource, ObjectKey], dict[str, Any] | None] = {}
    for cluster, resource, key, obj in log:
        final[(cluster, resource, key)] = obj
    f = folds.Fold(VIEWS)
    for (cluster, resource, key), obj in final.items():
        f.apply(cluster, resource, key, obj)
    f.mark_all()
    f.rebuild()
    return f


@settings(max_examples=150, deadline=None)
@given(log=st.lists(events(), max_size=40), every=st.integers(1, 5))
def test_incremental_rebuilds_equal_a_rebuild_from_scratch(log: list[Event], every: int) -> None:
    log = numbered(log)
    folded = incremental(log, every=every)
    assert folded.groups == from_scratch(log).groups
    # Without relabel_configs, what the discovery page shows as discovered is what is served,
    # and the same held objects.
    assert folded.discovered == folded.groups
    assert all(folded.discovered.held(key) is folded.groups.held(key) for key in folded.groups)
    recount: dict[str, tuple[int, int]] = {}
    for group in folded.groups.values():
        groups, targets = recount.get(group.job, (0, 0))
        recount[group.job] = groups + 1, targets + len(group.targets)
    assert {job: n for job, n in folded.totals.items() if n != (0, 0)} == recount


@settings(max_examples=100, deadline=None)
@given(log=st.lists(events(), max_size=30), split=st.integers(0, 30))
def test_a_catch_up_load_then_full_build_equals_folding_each_event(
    log: list[Event], split: int
) -> None:
    """The Kafka loop loads without marking until its full sync, then applies."""
    log = numbered(log)
    f = folds.Fold(VIEWS)
    for event in log[:split]:
        f.load(*event)
    f.mark_all()
    f.rebuild()
    for event in log[split:]:
        f.apply(*event)
    f.rebuild()
    assert f.groups == incremental(log).groups


@settings(max_examples=100, deadline=None)
@given(log=st.lists(events(), max_size=30), split=st.integers(0, 30), every=st.integers(1, 5))
def test_loading_after_groups_were_built_still_equals_folding_each_event(
    log: list[Event], split: int, every: int
) -> None:
    """A rebalance sends the loop back to loading while groups exist: a delete loaded then
    must still remove its group at the next full build."""
    log = numbered(log)
    f = incremental(log[:split], every=every)
    for event in log[split:]:
        f.load(*event)
    f.mark_all()
    f.rebuild()
    assert f.groups == incremental(log).groups


def as_record_values(log: list[Event]) -> list[tuple[str, Resource, ObjectKey, Any]]:
    """Each object as the Kafka loop keeps it: the producer's event record value."""
    out: list[tuple[str, Resource, ObjectKey, Any]] = []
    for cluster, resource, key, obj in log:
        kept = None
        if obj is not None:
            event = object_events.ObjectEvent(
                type=object_events.EventType.MODIFIED, cluster=cluster, resource=resource,
                resource_version=obj["metadata"]["resourceVersion"], observed_at=1.0,
                object=obj)  # fmt: skip
            kept = state.Encoded.of(obj, object_events.encode(event))
        out.append((cluster, resource, key, kept))
    return out


@settings(max_examples=100, deadline=None)
@given(log=st.lists(events(), max_size=30), every=st.integers(1, 5))
def test_objects_kept_as_record_values_build_the_same_groups(log: list[Event], every: int) -> None:
    """Parsed on demand through a cache smaller than the state, as with many objects."""
    log = numbered(log)
    kept = incremental(as_record_values(log), every=every, cache=2)  # type: ignore[arg-type]

    assert kept.groups == incremental(log, every=every).groups


@settings(max_examples=100, deadline=None)
@given(log=st.lists(events(), max_size=30), data=st.data())
def test_interleavings_that_keep_per_key_order_agree(log: list[Event], data: st.DataObject) -> None:
    log = numbered(log)
    by_key: dict[tuple[str, Resource, ObjectKey], list[Event]] = {}
    for event in log:
        by_key.setdefault(event[:3], []).append(event)
    queues = list(by_key.values())
    mixed: list[Event] = []
    while queues:
        queue = data.draw(st.sampled_from(queues))
        mixed.append(queue.pop(0))
        queues = [q for q in queues if q]

    assert incremental(mixed).groups == incremental(log).groups


@settings(max_examples=100, deadline=None)
@given(log=st.lists(events(), min_size=1, max_size=30))
def test_a_repeated_event_changes_nothing(log: list[Event]) -> None:
    log = numbered(log)
    f = incremental(log)
    f.apply(*log[-1])
    changes, _ = f.rebuild()

    assert changes == []


def test_a_pod_event_publishes_its_group_with_node_and_namespace_metadata() -> None:
    f = folds.Fold(VIEWS)
    f.apply("c1", Resource.NAMESPACES, ObjectKey("a"), namespace("a", team="x", version=1))
    f.apply("c1", Resource.NODES, ObjectKey("n0"), node("n0", ip="10.2.0.1", version=2))
    f.apply(
        "c1", Resource.PODS, ObjectKey("a/p0"), pod("a", "p0", ip="10.1.0.1", node="n0", version=3)
    )

    changes, errors = f.rebuild()

    assert errors == []
    by_key = {c.key: c.group for c in changes}
    group = by_key["pods/c1/pod/a/p0"]
    assert group is not None
    assert group.targets[0]["__address__"] == "10.1.0.1:8080"
    assert group.labels["__meta_kubernetes_node_name"] == "n0"
    assert group.labels["__meta_kubernetes_namespace_label_team"] == "x"
    assert group.labels["cluster"] == "c1"
    assert by_key["nodes/c1/node/n0"] is not None
    assert by_key["nodes/c1/node/n0"].labels["k8s_cluster"] == "c1"  # type: ignore[union-attr]


def test_a_node_change_rebuilds_only_the_pods_on_it() -> None:
    f = folds.Fold(VIEWS)
    for name in NODES:
        f.apply("c1", Resource.NODES, ObjectKey(name), node(name, ip="10.2.0.1", version=1))
    f.apply(
        "c1", Resource.PODS, ObjectKey("a/p0"), pod("a", "p0", ip="10.1.0.1", node="n0", version=2)
    )
    f.apply(
        "c1", Resource.PODS, ObjectKey("a/p1"), pod("a", "p1", ip="10.1.0.2", node="n1", version=3)
    )
    f.rebuild()

    relabelled = node("n0", ip="10.2.0.1", version=4)
    relabelled["metadata"]["labels"]["zone"] = "new"
    f.apply("c1", Resource.NODES, ObjectKey("n0"), relabelled)
    changes, _ = f.rebuild()

    assert sorted(c.key for c in changes) == ["nodes/c1/node/n0", "pods/c1/pod/a/p0"]


def test_a_deleted_pod_gives_exactly_one_tombstone() -> None:
    f = folds.Fold(VIEWS)
    f.apply("c1", Resource.NODES, ObjectKey("n0"), node("n0", ip="10.2.0.1", version=1))
    f.apply(
        "c1", Resource.PODS, ObjectKey("a/p0"), pod("a", "p0", ip="10.1.0.1", node="n0", version=1)
    )
    f.rebuild()

    f.apply("c1", Resource.PODS, ObjectKey("a/p0"), None)
    first, _ = f.rebuild()
    f.apply("c1", Resource.PODS, ObjectKey("a/p0"), None)
    second, _ = f.rebuild()

    assert first == [folds.Change(key="pods/c1/pod/a/p0", held=None)]  # type: ignore[arg-type]
    assert second == []


def test_a_pod_appearing_after_its_slice_joins_it() -> None:
    f = folds.Fold(VIEWS)
    f.apply(
        "c1", Resource.ENDPOINTSLICES, ObjectKey("a/s0"), slice_("a", "s0", pods=["p0"], version=1)
    )
    f.rebuild()
    before = f.groups["slices/c1/endpointslice/a/s0"].targets[0]

    f.apply(
        "c1", Resource.PODS, ObjectKey("a/p0"), pod("a", "p0", ip="10.0.0.1", node="n0", version=2)
    )
    changes, _ = f.rebuild()

    after = f.groups["slices/c1/endpointslice/a/s0"].targets[0]
    assert "__meta_kubernetes_pod_name" not in before
    assert after["__meta_kubernetes_pod_name"] == "p0"
    assert "slices/c1/endpointslice/a/s0" in {c.key for c in changes}


def test_a_malformed_object_is_reported_and_the_rest_still_builds() -> None:
    f = folds.Fold(VIEWS)
    bad = pod("a", "p0", ip="10.1.0.1", node="n0", version=1)
    bad["spec"]["containers"] = ["not-a-container"]
    f.apply("c1", Resource.NODES, ObjectKey("n0"), node("n0", ip="10.2.0.1", version=3))
    f.apply("c1", Resource.PODS, ObjectKey("a/p0"), bad)
    f.apply(
        "c1", Resource.PODS, ObjectKey("a/p1"), pod("a", "p1", ip="10.1.0.2", node="n0", version=2)
    )

    changes, errors = f.rebuild()

    assert [(e.job, e.key) for e in errors] == [("pods", "a/p0")]
    assert sorted(c.key for c in changes) == ["nodes/c1/node/n0", "pods/c1/pod/a/p1"]


def test_diff_upserts_what_differs_and_tombstones_what_is_gone() -> None:
    f = incremental([("c1", Resource.NODES, ObjectKey("n0"), node("n0", ip="10.2.0.1", version=1))])
    desired = dict(f.groups)
    stale = {**desired, "nodes/c1/node/old": next(iter(desired.values()))}

    same = folds.diff(desired.items(), desired, fingerprint=lambda g: g)
    assert list(same) == []
    gone = folds.diff(desired.items(), stale, fingerprint=lambda g: g)
    assert list(gone) == [("nodes/c1/node/old", None)]
    assert list(folds.diff(desired.items(), stale, fingerprint=lambda g: g, owned=set())) == []
    new = folds.diff(desired.items(), {}, fingerprint=lambda g: g)
    assert [key for key, _ in new] == list(desired)


def test_discovered_groups_are_kept_before_relabeling_even_when_all_are_dropped() -> None:
    keep_b: dict[str, Any] = {"source_labels": ["__meta_kubernetes_pod_name"], "regex": "b",
                              "action": "keep"}  # fmt: skip
    views = compile_jobs([ScrapeJob.model_validate(
        {"job_name": "kept", "kubernetes_sd_configs": [{"role": "pod"}],
         "relabel_configs": [keep_b]}
    )])  # fmt: skip
    f = folds.Fold(views)
    for name in ("a", "b"):
        f.apply("c1", Resource.PODS, ObjectKey(f"ns/{name}"),
                pod("ns", name, ip="10.1.0.1", node="n0", version=1))  # fmt: skip
    f.rebuild()
    assert sorted(f.groups) == ["kept/c1/pod/ns/b"]  # a was dropped: not published
    assert sorted(f.discovered) == ["kept/c1/pod/ns/a", "kept/c1/pod/ns/b"]
    assert f.discovered["kept/c1/pod/ns/b"].labels["__meta_kubernetes_pod_name"] == "b"  # type: ignore[index]
    assert "__meta_kubernetes_pod_name" not in f.groups["kept/c1/pod/ns/b"].labels  # type: ignore[index]

    f.apply("c1", Resource.PODS, ObjectKey("ns/a"), None)
    f.rebuild()
    assert sorted(f.discovered) == ["kept/c1/pod/ns/b"]  # a deleted pod is gone from both


def test_without_the_discovery_page_nothing_is_kept_as_discovered() -> None:
    keep_b: dict[str, Any] = {"source_labels": ["__meta_kubernetes_pod_name"], "regex": "b",
                              "action": "keep"}  # fmt: skip
    kept = {"job_name": "kept", "relabel_configs": [keep_b],
            "kubernetes_sd_configs": [{"role": "pod"}]}  # fmt: skip
    jobs = [ScrapeJob.model_validate(kept), *JOBS]
    on, off = folds.Fold(compile_jobs(jobs)), folds.Fold(compile_jobs(jobs), keep_discovered=False)
    for f in (on, off):
        for name in ("a", "b"):
            f.apply("c1", Resource.PODS, ObjectKey(f"ns/{name}"),
                    pod("ns", name, ip="10.1.0.1", node="n0", version=1))  # fmt: skip
        f.rebuild()
    assert off.groups == on.groups
    assert off.discovered == {}
    assert len(on.discovered) == len(on.groups) + 1  # pod a, dropped by the rule
