"""What a job sees, against Prometheus's informers (discovery/kubernetes/kubernetes.go Run).

Each expectation restates what Prometheus's caches would hold: which informers a role
starts (per attach_metadata option), with which namespaces and selectors, and that an
explicit namespace list starts one discoverer, with its own join caches, per namespace.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.compactor import jobs
from schemas.sd_config import AttachMetadata, Role, ScrapeJob
from schemas.topics import Resource


def obj(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if namespace is not None:
        metadata["namespace"] = namespace
    return {"metadata": metadata}


def view(role: str, *, own: str | None = None, **sd: Any) -> jobs.JobView:
    """The one view of a job with one kubernetes_sd_config `{role, **sd}`."""
    scrape = ScrapeJob.model_validate(
        {"job_name": "j", "kubernetes_sd_configs": [{"role": role, **sd}]}
    )
    (compiled,) = jobs.compile_job(scrape, own_namespace=own)
    return compiled


EVERY_OPTION = {"node": True, "namespace": True, "deployment": True, "job": True, "cronjob": True}
R = Resource

# --- which resources each role watches ---------------------------------------------------

WATCHED = [
    ("node", {}, {R.NODES}),
    ("node", EVERY_OPTION, {R.NODES}),  # the node role ignores attach_metadata
    ("service", {}, {R.SERVICES}),
    ("service", EVERY_OPTION, {R.SERVICES, R.NAMESPACES}),
    ("ingress", EVERY_OPTION, {R.INGRESSES, R.NAMESPACES}),
    ("pod", {}, {R.PODS}),
    ("pod", {"node": True}, {R.PODS, R.NODES}),
    ("pod", {"deployment": True}, {R.PODS, R.REPLICASETS}),
    ("pod", {"job": True}, {R.PODS, R.JOBS}),
    ("pod", {"cronjob": True}, {R.PODS, R.JOBS}),
    ("pod", EVERY_OPTION, {R.PODS, R.NODES, R.NAMESPACES, R.REPLICASETS, R.JOBS}),
    ("endpoints", {}, {R.ENDPOINTS, R.SERVICES, R.PODS}),
    ("endpoints", EVERY_OPTION,
     {R.ENDPOINTS, R.SERVICES, R.PODS, R.NODES, R.NAMESPACES, R.REPLICASETS, R.JOBS}),
    ("endpointslice", {}, {R.ENDPOINTSLICES, R.SERVICES, R.PODS}),
    ("endpointslice", {"namespace": True}, {R.ENDPOINTSLICES, R.SERVICES, R.PODS, R.NAMESPACES}),
]  # fmt: skip


@pytest.mark.parametrize(("role", "attach", "expected"), WATCHED)
def test_watched_resources(role: str, attach: dict[str, bool], expected: set[Resource]) -> None:
    assert jobs.watched_resources(Role(role), AttachMetadata(**attach)) == expected
    compiled = view(role, attach_metadata=attach)
    assert compiled.watched == expected
    assert compiled.role_resource in expected


@pytest.mark.parametrize("resource", list(Resource))
def test_unwatched_resources_are_never_seen(resource: Resource) -> None:
    compiled = view("service")
    assert compiled.sees(resource, obj("x", "ns")) is (resource is R.SERVICES)


# --- namespaces --------------------------------------------------------------------------


def test_all_namespaces_by_default() -> None:
    compiled = view("endpoints")
    assert compiled.namespaces is None
    for namespace in ("default", "kube-system", ""):
        assert compiled.sees(R.ENDPOINTS, obj("e", namespace))
        assert compiled.sees(R.PODS, obj("p", namespace))


def test_listed_namespaces_hide_the_role_and_its_joins() -> None:
    compiled = view("endpoints", namespaces={"names": ["shop"]}, attach_metadata=EVERY_OPTION)
    assert compiled.namespaces == frozenset({"shop"})
    for resource in (R.ENDPOINTS, R.SERVICES, R.PODS, R.REPLICASETS, R.JOBS):
        assert compiled.sees(resource, obj("x", "shop")), resource
        assert not compiled.sees(resource, obj("x", "other")), resource
    # cluster-scoped: never namespace-filtered
    assert compiled.sees(R.NODES, obj("n1"))
    assert compiled.sees(R.NAMESPACES, obj("other"))


def test_own_namespace_is_added() -> None:
    alone = view("pod", namespaces={"own_namespace": True}, own="monitoring")
    assert alone.namespaces == frozenset({"monitoring"})
    assert alone.sees(R.PODS, obj("p", "monitoring"))
    assert not alone.sees(R.PODS, obj("p", "shop"))
    both = view("pod", namespaces={"names": ["shop"], "own_namespace": True}, own="monitoring")
    assert both.namespaces == frozenset({"shop", "monitoring"})


def test_own_namespace_must_be_known() -> None:
    with pytest.raises(jobs.JobConfigError, match=r"kubernetes_sd_configs\[0\]\.namespaces"):
        view("pod", namespaces={"own_namespace": True})
    # without own_namespace in the config, the consumer's namespace changes nothing
    assert view("pod", own="monitoring").namespaces is None


# --- selectors ---------------------------------------------------------------------------


def test_role_selector_decides_which_objects_produce_groups() -> None:
    compiled = view(
        "pod",
        selectors=[{"role": "pod", "label": "app=web", "field": "status.phase!=Failed"}],
    )
    web = obj("p", "ns", app="web")
    assert compiled.sees(compiled.role_resource, web)
    assert not compiled.sees(R.PODS, obj("p", "ns", app="db"))
    assert not compiled.sees(R.PODS, {**web, "status": {"phase": "Failed"}})


def test_pod_role_node_selector_filters_the_node_cache() -> None:
    sd: dict[str, Any] = {"selectors": [{"role": "node", "label": "pool=blue"}]}
    compiled = view("pod", attach_metadata={"node": True}, **sd)
    assert compiled.sees(R.NODES, obj("n1", pool="blue"))
    assert not compiled.sees(R.NODES, obj("n2", pool="green"))
    assert compiled.sees(R.PODS, obj("p", "ns"))  # pods are not filtered by it
    # without node metadata there is no node cache: the selector does nothing
    assert not view("pod", **sd).sees(R.NODES, obj("n1", pool="blue"))


def test_node_role_selector() -> None:
    compiled = view("node", selectors=[{"role": "node", "field": "spec.unschedulable=false"}])
    assert compiled.sees(R.NODES, obj("n1"))
    assert not compiled.sees(R.NODES, {**obj("n2"), "spec": {"unschedulable": True}})


@pytest.mark.parametrize("role", ["endpoints", "endpointslice"])
def test_endpoints_roles_filter_each_cache_with_its_own_selector(role: str) -> None:
    own = Role(role).resource
    compiled = view(
        role,
        attach_metadata=EVERY_OPTION,
        selectors=[
            {"role": role, "label": "kubernetes.io/service-name"},
            {"role": "service", "label": "expose=true"},
            {"role": "pod", "label": "app"},
        ],
    )
    assert compiled.sees(own, obj("e", "ns", **{"kubernetes.io/service-name": "web"}))
    assert not compiled.sees(own, obj("e", "ns"))
    assert compiled.sees(R.SERVICES, obj("s", "ns", expose="true"))
    assert not compiled.sees(R.SERVICES, obj("s", "ns", expose="false"))
    assert compiled.sees(R.PODS, obj("p", "ns", app="web"))
    assert not compiled.sees(R.PODS, obj("p", "ns"))
    # no selector reaches nodes, namespaces, ReplicaSets or Jobs
    for resource in (R.NODES, R.NAMESPACES):
        assert compiled.sees(resource, obj("x"))
    for resource in (R.REPLICASETS, R.JOBS):
        assert compiled.sees(resource, obj("x", "ns"))


def test_owner_caches_never_get_selectors() -> None:
    compiled = view(
        "pod", attach_metadata={"deployment": True, "cronjob": True},
        selectors=[{"role": "pod", "label": "app=web"}],
    )  # fmt: skip
    assert compiled.sees(R.REPLICASETS, obj("rs", "ns", app="db"))
    assert compiled.sees(R.JOBS, obj("job", "ns"))


def test_service_and_ingress_see_every_namespace_object() -> None:
    for role in ("service", "ingress"):
        compiled = view(
            role, namespaces={"names": ["a"]}, attach_metadata={"namespace": True},
            selectors=[{"role": role, "label": "x"}],
        )  # fmt: skip
        assert compiled.sees(R.NAMESPACES, obj("b", team="z"))
        assert not compiled.sees(R.NODES, obj("n"))


# --- joins across namespaces -------------------------------------------------------------


def test_listed_namespaces_keep_joins_inside_one_namespace() -> None:
    compiled = view("endpoints", namespaces={"names": ["a", "b"]}, attach_metadata=EVERY_OPTION)
    pod_in_b = obj("p", "b")
    assert compiled.sees(R.PODS, pod_in_b)
    assert compiled.sees_join(R.PODS, pod_in_b, from_namespace="b")
    assert not compiled.sees_join(R.PODS, pod_in_b, from_namespace="a")
    assert compiled.sees_join(R.NODES, obj("n"), from_namespace="a")
    assert compiled.sees_join(R.NAMESPACES, obj("b"), from_namespace="a")


def test_all_namespaces_join_across() -> None:
    compiled = view("endpoints")
    assert compiled.sees_join(R.PODS, obj("p", "b"), from_namespace="a")


def test_a_join_still_needs_the_selector() -> None:
    compiled = view("endpoints", selectors=[{"role": "pod", "label": "app"}])
    assert not compiled.sees_join(R.PODS, obj("p", "a"), from_namespace="a")


# --- jobs, configs, clusters -------------------------------------------------------------


def test_one_view_per_sd_config() -> None:
    scrape = ScrapeJob.model_validate(
        {
            "job_name": "mixed",
            "clusters": ["prod"],
            "cluster_label": "k8s_cluster",
            "kubernetes_sd_configs": [{"role": "pod"}, {"role": "node"}],
        }
    )
    pods, nodes = jobs.compile_job(scrape)
    assert (pods.job, pods.index, pods.role) == ("mixed", 0, Role.POD)
    assert (nodes.index, nodes.role) == (1, Role.NODE)
    assert pods.cluster_label == "k8s_cluster"
    assert pods.reads_cluster("prod")
    assert not pods.reads_cluster("dev")
    assert jobs.compile_jobs([scrape, scrape]) == (pods, nodes, pods, nodes)


def test_every_cluster_by_default() -> None:
    assert view("pod").reads_cluster("any")


def test_views_are_values() -> None:
    assert view("pod", namespaces={"names": ["a"]}) == view("pod", namespaces={"names": ["a"]})
    assert hash(view("pod")) == hash(view("pod"))


NAMESPACES = st.sampled_from(["a", "b", "c"])


@given(st.lists(NAMESPACES, unique=True), NAMESPACES, st.sampled_from(["pod", "endpoints"]))
def test_namespace_rule(names: list[str], namespace: str, role: str) -> None:
    compiled = view(role, namespaces={"names": names})
    visible = not names or namespace in names
    assert compiled.sees(R.PODS, obj("p", namespace)) is visible
    assert not compiled.sees(R.NODES, obj("n"))  # no node metadata, no node cache
