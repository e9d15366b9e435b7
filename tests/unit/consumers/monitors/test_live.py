"""Live monitor jobs: the fold's views follow them (no flap on a swap) and the sinks serve
only live ones; target keys stay splittable with `/` in job names."""

from __future__ import annotations

from typing import Any

from consumers.compactor import folds, monitor_views
from consumers.monitors.live import LiveMonitors, changed_jobs
from consumers.sinks.views import RawRecord, TargetView
from schemas import targets
from schemas.monitors import MonitorsSettings
from schemas.targets import TargetGroup
from schemas.topics import (
    ObjectKey,
    Resource,
    Source,
    TargetKey,
    parse_target_key,
    partition_for,
    target_key,
)

SETTINGS = MonitorsSettings.model_validate(
    {"pod_monitor_selector": {}, "pod_monitor_namespace_selector": {"matchLabels": {"m": "on"}}}
)
NS = "team"


def pod_monitor(name: str, *endpoints: dict[str, Any], app: str = "web") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": app}},
                     "podMetricsEndpoints": list(endpoints)}}  # fmt: skip


def pod(name: str, ip: str, app: str = "web") -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "uid": name, "labels": {"app": app}},
        "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i:1",
                 "ports": [{"name": "m", "containerPort": 9090, "protocol": "TCP"}]}]},
        "status": {"podIP": ip, "phase": "Running"},
    }  # fmt: skip


def namespace(labels: dict[str, str]) -> dict[str, Any]:
    return {"kind": "Namespace", "metadata": {"name": NS, "labels": labels}}


def live_with(*monitors: dict[str, Any], labels: dict[str, str] | None = None) -> LiveMonitors:
    found = LiveMonitors(SETTINGS)
    found.apply("c1", Resource.NAMESPACES, ObjectKey(NS), namespace(labels or {"m": "on"}))
    for m in monitors:
        key = ObjectKey(f"{NS}/{m['metadata']['name']}")
        found.apply("c1", Resource.PODMONITORS, key, m)
    return found


def test_target_keys_quote_the_job_and_split_back() -> None:
    key = target_key("podMonitor/ns/a%b/0", "c1", Source("pod/ns/p"))
    assert key == "podMonitor%2Fns%2Fa%25b%2F0/c1/pod/ns/p"
    assert parse_target_key(key) == ("podMonitor/ns/a%b/0", "c1", "pod/ns/p")
    assert target_key("plain_job:x-1", "c1", Source("pod/ns/p")) == "plain_job:x-1/c1/pod/ns/p"


def test_jobs_follow_monitors_and_namespace_labels() -> None:
    live = live_with(pod_monitor("pm", {"port": "m"}, {"portNumber": 1}))
    first = live.jobs()
    assert sorted(first) == ["podMonitor/team/pm/0", "podMonitor/team/pm/1"]
    assert first["podMonitor/team/pm/0"]["c1"].defaults["job"] == "podMonitor/team/pm/0"
    generation = live.generation
    live.apply("c1", Resource.NAMESPACES, ObjectKey(NS), namespace({}))
    assert live.jobs() == {}
    assert live.generation == generation + 1
    assert changed_jobs(first, live.jobs()) == frozenset(first)


def test_an_edit_that_keeps_targets_keeps_the_view() -> None:
    live = live_with(pod_monitor("pm", {"port": "m"}))
    old = {(n, c): j for n, by in live.jobs().items() for c, j in by.items()}
    edited = pod_monitor("pm", {"port": "m", "metricRelabelings": [{"action": "drop"}]})
    live.apply("c1", Resource.PODMONITORS, ObjectKey(f"{NS}/pm"), edited)
    assert monitor_views.plan(old, live.jobs()) == monitor_views.Plan((), ())
    moved = pod_monitor("pm", {"port": "m", "path": "/other"})
    live.apply("c1", Resource.PODMONITORS, ObjectKey(f"{NS}/pm"), moved)
    plan = monitor_views.plan(old, live.jobs())
    assert plan.remove == (("podMonitor/team/pm/0", "c1"),)
    assert [j.name for j in plan.add] == ["podMonitor/team/pm/0"]


def _fold_with_pods() -> folds.Fold:
    fold = folds.Fold(())
    fold.apply("c1", Resource.PODS, ObjectKey(f"{NS}/a"), pod("a", "10.0.0.1"))
    fold.apply("c1", Resource.PODS, ObjectKey(f"{NS}/b"), pod("b", "10.0.0.2", app="db"))
    return fold


def test_views_come_and_go_with_tombstones_and_a_swap_writes_only_real_changes() -> None:
    fold = _fold_with_pods()
    live = live_with(pod_monitor("pm", {"port": "m"}))
    (job,) = live.jobs()["podMonitor/team/pm/0"].values()
    position = fold.add_view(monitor_views.view_of(job))
    built, errors = fold.rebuild()
    assert not errors
    assert [(c.key, c.group is not None) for c in built] == [
        (TargetKey("podMonitor%2Fteam%2Fpm%2F0/c1/pod/team/a"), True)
    ]
    group = built[0].group
    assert group is not None
    assert group.job == "podMonitor/team/pm/0"
    assert group.targets[0]["__address__"] == "10.0.0.1:9090"
    # swapped for an equal view: nothing to write
    fold.remove_view(position)
    position = fold.add_view(monitor_views.view_of(job))
    assert fold.rebuild() == ([], [])
    # swapped for one that selects the other pod: a tombstone and an upsert
    live.apply("c1", Resource.PODMONITORS, ObjectKey(f"{NS}/pm"),
               pod_monitor("pm", {"port": "m"}, app="db"))  # fmt: skip
    (other,) = live.jobs()["podMonitor/team/pm/0"].values()
    fold.remove_view(position)
    fold.add_view(monitor_views.view_of(other))
    built, _ = fold.rebuild()
    assert sorted((c.key.rsplit("/", 1)[1], c.group is None) for c in built) == [
        ("a", True),
        ("b", False),
    ]
    assert fold.totals["podMonitor/team/pm/0"] == (1, 1)


def _group(job: str) -> TargetGroup:
    return TargetGroup(job=job, cluster="c1", source="pod/team/a", labels={},
                       targets=[{"__address__": "10.0.0.1:1"}])  # fmt: skip


def test_sinks_hold_monitor_jobs_early_and_serve_them_only_while_live() -> None:
    live: set[str] = set()
    view = TargetView(configured=frozenset({"pods"}), monitor_jobs=lambda: live)
    job = "podMonitor/team/pm/0"
    g = _group(job)
    record = RawRecord(target_key(job, "c1", Source(g.source)).encode(), targets.encode(g))
    applied = view.apply_records([record])
    assert applied.skipped == ()
    assert not view.known(job)
    assert view.jobs() == ["pods"]
    assert view.document(job) == b"[]"
    live.add(job)
    assert view.known(job)
    assert view.jobs() == [job, "pods"]
    assert b"10.0.0.1:1" in view.document(job)
    other = RawRecord(b"evil/c1/pod/team/a", targets.encode(_group("evil")))
    assert [s.reason for s in view.apply_records([other]).skipped] == ["unconfigured_job"]


def test_a_new_view_marks_only_objects_in_its_namespaces() -> None:
    fold = _fold_with_pods()
    elsewhere = {
        **pod("c", "10.0.0.3"),
        "metadata": {"name": "c", "namespace": "other", "uid": "c", "labels": {"app": "web"}},
    }
    fold.apply("c1", Resource.PODS, ObjectKey("other/c"), elsewhere)
    fold.rebuild()
    live = live_with(pod_monitor("pm", {"port": "m"}))
    (job,) = live.jobs()["podMonitor/team/pm/0"].values()
    position = fold.add_view(monitor_views.view_of(job))
    assert fold.marked() == {
        (position, "c1", ObjectKey(f"{NS}/a")),
        (position, "c1", ObjectKey(f"{NS}/b")),
    }


def test_a_view_removed_after_its_object_was_deleted_tombstones_that_group() -> None:
    """The object is gone from the cluster state but its rebuild is still pending: the
    removed view's group must be tombstoned, not left published with nothing to reach it."""
    fold = _fold_with_pods()
    live = live_with(pod_monitor("pm", {"port": "m"}))
    (job,) = live.jobs()["podMonitor/team/pm/0"].values()
    position = fold.add_view(monitor_views.view_of(job))
    fold.rebuild()
    fold.apply("c1", Resource.PODS, ObjectKey(f"{NS}/a"), None)
    fold.remove_view(position)
    built, _ = fold.rebuild()
    key = TargetKey("podMonitor%2Fteam%2Fpm%2F0/c1/pod/team/a")
    assert [(c.key, c.group) for c in built] == [(key, None)]
    assert key not in fold.groups


def test_a_dropped_partition_forgets_its_monitors_and_namespaces_only() -> None:
    """A partition read again from 0 (Kafka denied it before) must not keep what it held:
    a monitor deleted meanwhile may have lost its tombstone to compaction."""
    live = live_with(pod_monitor("pm", {"port": "m"}))
    other = {**pod_monitor("x", {"port": "m"}), "metadata": {"name": "x", "namespace": "elsewhere"}}
    live.apply("c1", Resource.PODMONITORS, ObjectKey("elsewhere/x"), other)
    live.apply("c2", Resource.PODMONITORS, ObjectKey(f"{NS}/pm"), pod_monitor("pm", {"port": "m"}))
    mine = partition_for(ObjectKey(f"{NS}/pm"), 3)
    assert partition_for(ObjectKey("elsewhere/x"), 3) != mine  # else pick another namespace
    copy = live.copy()
    assert live.drop_partition("c1", Resource.PODMONITORS, partition=mine, partitions=3)
    assert live.jobs() == {}  # elsewhere's namespace is not selected; c2 has no namespace
    assert copy.jobs() != {}  # a copy is independent
    assert not live.drop_partition("c1", Resource.PODS, partition=mine, partitions=3)
    assert live.drop_partition("c2", Resource.PODMONITORS, partition=mine, partitions=3)
    live.apply("c1", Resource.PODMONITORS, ObjectKey(f"{NS}/pm"), pod_monitor("pm", {"port": "m"}))
    assert list(live.jobs()) == ["podMonitor/team/pm/0"]
    ns_partition = partition_for(ObjectKey(NS), 3)
    assert live.drop_partition("c1", Resource.NAMESPACES, partition=ns_partition, partitions=3)
    assert live.jobs() == {}  # the namespace's labels are unknown again


def test_a_monitors_keep_dropped_targets_bounds_its_views_dropped_targets() -> None:
    """keepDroppedTargets (monitor-wide, as the operator writes keep_dropped_targets)."""
    monitor = pod_monitor("pm", {"port": "m"})
    monitor["spec"]["keepDroppedTargets"] = 5
    (job,) = live_with(monitor).jobs()["podMonitor/team/pm/0"].values()
    assert monitor_views.view_of(job).keep_dropped == 5
    (plain,) = live_with(pod_monitor("pm", {"port": "m"})).jobs()["podMonitor/team/pm/0"].values()
    assert monitor_views.view_of(plain).keep_dropped == 0
