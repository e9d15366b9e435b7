"""Shared label pieces: sanitising, Go formatting, metadata, pod and owner blocks.

The contract: docs/kubernetes-sd-contract.md §3.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.roles import joins, labels, lookups
from schemas.topics import ObjectKey, Resource


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test/label", "test_label"),
        ("app.kubernetes.io/name", "app_kubernetes_io_name"),
        ("kubernetes.io/service-name", "kubernetes_io_service_name"),
        ("cost-center", "cost_center"),
        ("\u00fcn\u00efcode", "_n_code"),
        ("Unschedulable", "Unschedulable"),
        ("a--b", "a__b"),
        ("9lives", "9lives"),
        ("", ""),
        ("a\U0001f600b", "a_b"),  # one code point outside the BMP: one `_`
        ("e\u0301", "e_"),  # a combining accent is its own code point
        ("_x_", "_x_"),
    ],
)
def test_sanitize(name: str, expected: str) -> None:
    """Spec §3: each code point other than [A-Za-z0-9_] becomes one `_`; case kept."""
    assert labels.sanitize(name) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a\xffb", "a_b"),
        (b"\xe2\x82", "__"),  # a truncated 3-byte sequence: two invalid bytes
        (b"\xed\xa0\x80", "___"),  # an encoded surrogate is three invalid bytes
        (b"\xc3\xbc", "_"),  # valid UTF-8 for one code point
    ],
)
def test_sanitize_invalid_utf8(raw: bytes, expected: str) -> None:
    """Spec §3: each invalid UTF-8 byte becomes one `_` (carried as surrogateescape)."""
    assert labels.sanitize(raw.decode("utf-8", "surrogateescape")) == expected


@given(st.text())
def test_sanitize_is_per_code_point(name: str) -> None:
    clean = labels.sanitize(name)
    assert len(clean) == len(name)
    assert re.fullmatch(r"[A-Za-z0-9_]*", clean)
    assert labels.sanitize(clean) == clean


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("True", "true"),
        ("Unknown", "unknown"),
        ("D\u0130SK", "disk"),  # Go maps U+0130 to `i`; Python's lower() gives two code points
        ("\u03a3\u0391\u03a3", "\u03c3\u03b1\u03c3"),  # no final-sigma rule in Go
        ("\u212a", "k"),  # Kelvin sign
    ],
)
def test_go_lower(text: str, expected: str) -> None:
    assert labels.go_lower(text) == expected


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("10.0.0.1", "80", "10.0.0.1:80"),
        ("2001:db8::1", "80", "[2001:db8::1]:80"),
        ("fe80::1%eth0", "9100", "[fe80::1%eth0]:9100"),
        ("web.shop.svc", "443", "web.shop.svc:443"),
        ("", "80", ":80"),
    ],
)
def test_join_host_port(host: str, port: str, expected: str) -> None:
    """Spec §3: Go's host/port join brackets a host containing `:`."""
    assert labels.join_host_port(host, port) == expected


@pytest.mark.parametrize(
    ("value", "signed", "unsigned"),
    [(80, "80", "80"), (None, "0", "0"), (0, "0", "0"), (-1, "-1", "18446744073709551615")],
)
def test_number_text(value: int | None, signed: str, unsigned: str) -> None:
    """Decimal numbers; missing is Go's 0; ports go through Go's uint64 conversion."""
    assert labels.int_text(value) == signed
    assert labels.uint_text(value) == unsigned


_NAMES = labels.Names("v_", "p_")


@pytest.mark.parametrize(
    "mapping",
    [
        {"a.b": "1", "a_b": "2", "a-b": "3"},
        {"a_b": "2", "a-b": "3", "a.b": "1"},
        {"a-b": "3", "a_b": "2", "a.b": "1"},
    ],
)
def test_collisions_pick_the_greatest_key(mapping: dict[str, str]) -> None:
    """Spec §3 asks for a deterministic rule; ours: sorted key order, the last write wins."""
    out: dict[str, str] = {}
    labels.add_pairs(out, mapping, _NAMES)
    assert out == {"v_a_b": "2", "p_a_b": "true"}


def test_pairs_keep_empty_values_and_read_null_as_empty() -> None:
    out: dict[str, str] = {}
    labels.add_pairs(out, {"a": "", "b": None}, _NAMES)  # type: ignore[dict-item]  # JSON null
    assert out == {"v_a": "", "p_a": "true", "v_b": "", "p_b": "true"}


def test_metadata_block() -> None:
    """Spec §3: <R>_name, _label_/_labelpresent_, _annotation_/_annotationpresent_."""
    out: dict[str, str] = {}
    m = {"name": "web", "labels": {"app": "web"}, "annotations": {"a/b": ""}}
    labels.add_meta(out, m, labels.SERVICE_META)  # type: ignore[arg-type]
    assert out == {
        "__meta_kubernetes_service_name": "web",
        "__meta_kubernetes_service_label_app": "web",
        "__meta_kubernetes_service_labelpresent_app": "true",
        "__meta_kubernetes_service_annotation_a_b": "",
        "__meta_kubernetes_service_annotationpresent_a_b": "true",
    }


def test_namespace_block_has_no_name() -> None:
    """Spec §3: the namespace block has no `_name` label."""
    ns = {"metadata": {"name": "shop", "labels": {"team": "x"}}}
    out: dict[str, str] = {}
    labels.add_namespace(
        out, lookup=lookups.MemoryLookup.from_objects(namespaces=[ns]), namespace="shop"
    )
    assert out == {
        "__meta_kubernetes_namespace_label_team": "x",
        "__meta_kubernetes_namespace_labelpresent_team": "true",
    }


def test_node_block_has_only_name_labels_annotations() -> None:
    """Spec §3: no provider ID, addresses or conditions in the joined node block."""
    node = {
        "metadata": {"name": "n", "annotations": {"k": "v"}},
        "spec": {"providerID": "p"},
        "status": {"addresses": [{"type": "InternalIP", "address": "1.1.1.1"}]},
    }
    assert labels.node_block(node) == {
        "__meta_kubernetes_node_name": "n",
        "__meta_kubernetes_node_annotation_k": "v",
        "__meta_kubernetes_node_annotationpresent_k": "true",
    }


@pytest.mark.parametrize(
    ("conditions", "ready"),
    [
        ([{"type": "Ready", "status": "True"}], "true"),
        ([{"type": "Ready", "status": "False"}, {"type": "Ready", "status": "True"}], "false"),
        ([{"type": "Ready", "status": "Unknown"}], "unknown"),
        ([{"type": "ContainersReady", "status": "True"}], "unknown"),
        (None, "unknown"),
    ],
)
def test_pod_ready(conditions: list[dict[str, str]] | None, ready: str) -> None:
    """Spec §3: the first Ready condition's status lower-cased, else "unknown"."""
    assert labels.pod_ready({"conditions": conditions}) == ready


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ([{"kind": "ReplicaSet", "name": "rs"}], {}),
        ([{"kind": "ReplicaSet", "name": "rs", "controller": False}], {}),
        (
            [{"kind": "A", "name": "a"}, {"kind": "B", "name": "b", "controller": True}],
            {
                "__meta_kubernetes_pod_controller_kind": "B",
                "__meta_kubernetes_pod_controller_name": "b",
            },
        ),
        (
            [
                {"kind": "B", "name": "b", "controller": True},
                {"kind": "C", "name": "c", "controller": True},
            ],
            {
                "__meta_kubernetes_pod_controller_kind": "B",
                "__meta_kubernetes_pod_controller_name": "b",
            },
        ),
        ([{"name": "b", "controller": True}], {"__meta_kubernetes_pod_controller_name": "b"}),
        (
            [{"kind": "B", "name": "", "controller": True}],
            {"__meta_kubernetes_pod_controller_kind": "B"},
        ),
    ],
)
def test_controller_labels(refs: list[dict[str, Any]], expected: dict[str, str]) -> None:
    """Spec §3: the first ownerReference with controller true; kind and name each if non-empty."""
    pod = {"metadata": {"name": "p", "ownerReferences": refs}}
    block = labels.pod_block(pod, lookup=lookups.EMPTY, attach=lookups.NO_ATTACH)
    assert {k: v for k, v in block.items() if "controller" in k} == expected


def _owner(kind: str, name: str, *, controller: bool = True) -> dict[str, Any]:
    return {"kind": kind, "name": name, "controller": controller}


_RS = {
    "metadata": {"name": "rs", "namespace": "ns", "ownerReferences": [_owner("Deployment", "d")]}
}
_RS_ROLLOUT = {
    "metadata": {"name": "rs", "namespace": "ns", "ownerReferences": [_owner("Rollout", "r")]}
}
_RS_LOOSE = {
    "metadata": {
        "name": "rs",
        "namespace": "ns",
        "ownerReferences": [_owner("Deployment", "d", controller=False)],
    }
}
_RS_ELSEWHERE = {
    "metadata": {"name": "rs", "namespace": "other", "ownerReferences": [_owner("Deployment", "d")]}
}
_JOB = {"metadata": {"name": "j", "namespace": "ns", "ownerReferences": [_owner("CronJob", "cj")]}}
_ALL = lookups.Attach(deployment=True, job=True, cronjob=True)
_DEPLOYMENT = "__meta_kubernetes_pod_deployment_name"
_JOB_NAME = "__meta_kubernetes_pod_job_name"
_CRONJOB = "__meta_kubernetes_pod_cronjob_name"


@pytest.mark.parametrize(
    ("controller", "attach", "cluster", "expected"),
    [
        (_owner("ReplicaSet", "rs"), _ALL, [_RS], {_DEPLOYMENT: "d"}),
        (_owner("ReplicaSet", "rs"), lookups.Attach(job=True, cronjob=True), [_RS], {}),
        (_owner("ReplicaSet", "rs"), _ALL, [], {}),
        (_owner("ReplicaSet", "rs"), _ALL, [_RS_ROLLOUT], {}),
        (_owner("ReplicaSet", "rs"), _ALL, [_RS_LOOSE], {}),
        (_owner("ReplicaSet", "rs"), _ALL, [_RS_ELSEWHERE], {}),
        (_owner("Job", "j"), _ALL, [_JOB], {_JOB_NAME: "j", _CRONJOB: "cj"}),
        (_owner("Job", "j"), lookups.Attach(job=True), [], {_JOB_NAME: "j"}),
        (_owner("Job", "j"), lookups.Attach(cronjob=True), [_JOB], {_CRONJOB: "cj"}),
        (_owner("Job", "j"), lookups.Attach(cronjob=True, deployment=True), [], {}),
        (_owner("StatefulSet", "s"), _ALL, [_RS, _JOB], {}),
    ],
)
def test_owner_chain(
    controller: dict[str, Any],
    attach: lookups.Attach,
    cluster: list[dict[str, Any]],
    expected: dict[str, str],
) -> None:
    """Spec §3: deployment via a cached ReplicaSet, job from the ref, cronjob via a cached Job."""
    lookup = lookups.MemoryLookup.from_objects(
        replicasets=[o for o in cluster if o is not _JOB], jobs=[o for o in cluster if o is _JOB]
    )
    out: dict[str, str] = {}
    labels.add_owner_chain(out, controller, namespace="ns", lookup=lookup, attach=attach)
    assert out == expected


def _pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": list(containers), "initContainers": list(init)},
        "status": {"podIP": "10.0.0.1"},
    }


@pytest.mark.parametrize(
    ("pod", "port_name"),
    [
        (
            _pod(
                {
                    "name": "a",
                    "ports": [
                        {"containerPort": 80, "name": "first"},
                        {"containerPort": 80, "name": "second"},
                    ],
                }
            ),
            "first",
        ),
        (
            _pod(
                {"name": "a", "ports": [{"containerPort": 80, "name": "a"}]},
                {"name": "b", "ports": [{"containerPort": 80, "name": "b"}]},
            ),
            "b",
        ),
        (
            _pod(
                {"name": "a", "ports": [{"containerPort": 80, "name": "a"}]},
                init=({"name": "i", "ports": [{"containerPort": 80, "name": "i"}]},),
            ),
            "i",
        ),
        (_pod({"name": "a", "ports": [{"containerPort": 81, "name": "a"}]}), None),
    ],
)
def test_pod_join_container_match(pod: dict[str, Any], port_name: str | None) -> None:
    """Spec §4.4: containers then init containers; a later container's match overwrites."""
    join = joins.PodJoin(
        lookup=lookups.MemoryLookup.from_objects(pods=[pod]), attach=lookups.NO_ATTACH
    )
    joined = join.resolve({"kind": "Pod", "name": "p", "namespace": "ns"})
    assert joined is not None
    match = joined.by_number.get(80)
    assert (
        None if match is None else match["__meta_kubernetes_pod_container_port_name"]
    ) == port_name


class _CountingLookup:
    """A Lookup over MemoryLookup that counts node reads."""

    def __init__(self, inner: lookups.MemoryLookup) -> None:
        self.inner = inner
        self.node_reads = 0

    def get(self, resource: Resource, key: ObjectKey, /) -> dict[str, Any] | None:
        self.node_reads += resource is Resource.NODES
        return self.inner.get(resource, key)


def test_node_blocks_read_each_node_once() -> None:
    lookup = _CountingLookup(lookups.MemoryLookup.from_objects(nodes=[{"metadata": {"name": "n"}}]))
    blocks = joins.NodeBlocks(lookup)
    found: list[dict[str, str]] = []
    for name in ("n", "n", "x", "x", None):
        out: dict[str, str] = {}
        blocks.add(out, name)
        found.append(out)
    assert found == [{"__meta_kubernetes_node_name": "n"}] * 2 + [{}] * 3
    assert lookup.node_reads == 2
