from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from producers import trim
from schemas.config import ProducerSettings
from schemas.topics import Resource

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DROP = trim.DropAnnotations.of([LAST_APPLIED])


def meta(**extra: Any) -> dict[str, Any]:
    return {
        "name": "web-1",
        "namespace": "shop",
        "uid": "u-1",
        "resourceVersion": "42",
        "creationTimestamp": "2026-11-24T10:00:00Z",
        "labels": {"app": "web"},
        "annotations": {"prometheus.io/port": "8080", LAST_APPLIED: "{...}"},
        "managedFields": [{"manager": "kubectl", "fieldsV1": {}}],
        **extra,
    }


KEPT_META = {
    "name": "web-1",
    "namespace": "shop",
    "uid": "u-1",
    "resourceVersion": "42",
    "labels": {"app": "web"},
    "annotations": {"prometheus.io/port": "8080"},
}

RAW_POD: dict[str, Any] = {
    "kind": "Pod",
    "apiVersion": "v1",
    "metadata": meta(
        ownerReferences=[
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": "web-7d",
                "uid": "r",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    ),
    "spec": {
        "nodeName": "node-a",
        "serviceAccountName": "web",
        "volumes": [{"name": "token", "secret": {"secretName": "web-token"}}],
        "containers": [
            {
                "name": "app",
                "image": "example/app:1",
                "env": [{"name": "PASSWORD", "value": "hunter2"}],
                "envFrom": [{"secretRef": {"name": "db"}}],
                "volumeMounts": [{"name": "token", "mountPath": "/t"}],
                "ports": [
                    {"name": "http", "containerPort": 8080, "protocol": "TCP", "hostPort": 80}
                ],
                "livenessProbe": {"httpGet": {"path": "/healthz"}},
                "resources": {"limits": {"cpu": "1"}},
            }
        ],
        "initContainers": [
            {"name": "init", "image": "busybox", "restartPolicy": "Always", "command": ["sh"]}
        ],
        "imagePullSecrets": [{"name": "registry"}],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}],
        "hostIP": "10.1.0.11",
        "startTime": "2026-11-24T10:00:00Z",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "x"}],
        "containerStatuses": [
            {
                "name": "app",
                "containerID": "containerd://abc",
                "ready": True,
                "state": {"running": {}},
            }
        ],
    },
}

TRIMMED_POD = {
    "metadata": {
        **KEPT_META,
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d", "controller": True}
        ],
    },
    "spec": {
        "nodeName": "node-a",
        "serviceAccountName": "web",
        "containers": [
            {
                "name": "app",
                "image": "example/app:1",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            }
        ],
        "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always"}],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}],
        "hostIP": "10.1.0.11",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "app", "containerID": "containerd://abc"}],
    },
}

RAW_SERVICE = {
    "metadata": meta(),
    "spec": {
        "type": "LoadBalancer",
        "clusterIP": "10.0.0.9",
        "selector": {"app": "web"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"}
        ],
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
        "sessionAffinity": "None",
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1", "ipMode": "VIP"}]}},
}
TRIMMED_SERVICE = {
    "metadata": KEPT_META,
    "spec": {
        "type": "LoadBalancer",
        "clusterIP": "10.0.0.9",
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "ipFamilyPolicy": "SingleStack",
        "ipFamilies": ["IPv4"],
    },
    "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}},
}

RAW_ENDPOINTS = {
    "metadata": meta(),
    "subsets": [
        {
            "addresses": [
                {
                    "ip": "10.244.1.7",
                    "nodeName": "",
                    "targetRef": {
                        "kind": "Pod",
                        "name": "p",
                        "namespace": "shop",
                        "uid": "x",
                        "resourceVersion": "9",
                    },
                }
            ],
            "notReadyAddresses": [{"ip": "10.244.1.8", "hostname": "h"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
        }
    ],
}
TRIMMED_ENDPOINTS = {
    "metadata": KEPT_META,
    "subsets": [
        {
            "addresses": [
                {
                    "ip": "10.244.1.7",
                    "nodeName": "",
                    "targetRef": {"kind": "Pod", "name": "p", "namespace": "shop"},
                }
            ],
            "notReadyAddresses": [{"ip": "10.244.1.8", "hostname": "h"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }
    ],
}

RAW_SLICE = {
    "metadata": meta(),
    "addressType": "IPv4",
    "ports": [{"name": None, "port": None, "protocol": "TCP"}],
    "endpoints": [
        {
            "addresses": ["10.244.1.7"],
            "conditions": {"ready": True, "serving": None},
            "targetRef": {},
            "zone": "z1",
            "hints": {"forZones": [{"name": "z1"}]},
            "deprecatedTopology": {"kubernetes.io/hostname": "node-a"},
        },
    ],
}
TRIMMED_SLICE = {
    "metadata": KEPT_META,
    "addressType": "IPv4",
    "ports": [{"name": None, "port": None, "protocol": "TCP"}],
    "endpoints": [
        {
            "addresses": ["10.244.1.7"],
            "conditions": {"ready": True, "serving": None},
            "targetRef": {},
            "zone": "z1",
            "deprecatedTopology": {"kubernetes.io/hostname": "node-a"},
        },
    ],
}

RAW_INGRESS = {
    "metadata": meta(),
    "spec": {
        "ingressClassName": "",
        "defaultBackend": {"service": {"name": "x"}},
        "tls": [{"hosts": ["*.example.com"], "secretName": "tls-cert"}],
        "rules": [
            {
                "host": "a.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/api",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "x"}},
                        }
                    ]
                },
            },
            {"host": "b.example.com"},
            {"host": "c.example.com", "http": {}},
        ],
    },
}
TRIMMED_INGRESS = {
    "metadata": KEPT_META,
    "spec": {
        "ingressClassName": "",
        "tls": [{"hosts": ["*.example.com"]}],
        "rules": [
            {"host": "a.example.com", "http": {"paths": [{"path": "/api"}]}},
            {"host": "b.example.com"},
            {"host": "c.example.com", "http": {}},
        ],
    },
}

NODE_META = {"name": "node-a", "resourceVersion": "7", "labels": {"zone": "z1"}}
RAW_NODE = {
    "metadata": {**NODE_META, "managedFields": []},
    "spec": {
        "providerID": "aws:///i-1",
        "podCIDR": "10.244.1.0/24",
        "unschedulable": True,
        "taints": [{"key": "k"}],
    },
    "status": {
        "addresses": [{"type": "InternalIP", "address": "10.1.0.11"}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "images": [{"names": ["big"], "sizeBytes": 1}],
        "nodeInfo": {"kubeletVersion": "v1.34.4"},
    },
}
TRIMMED_NODE = {
    "metadata": NODE_META,
    "spec": {"providerID": "aws:///i-1", "unschedulable": True},
    "status": {
        "addresses": [{"type": "InternalIP", "address": "10.1.0.11"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
    },
}

RAW_REPLICASET = {
    "metadata": meta(ownerReferences=[{"kind": "Deployment", "name": "web", "controller": True}]),
    "spec": {"replicas": 2, "template": {"spec": {"containers": [{"env": [{"value": "s"}]}]}}},
    "status": {"replicas": 2},
}
TRIMMED_REPLICASET = {
    "metadata": {
        **KEPT_META,
        "ownerReferences": [{"kind": "Deployment", "name": "web", "controller": True}],
    },
}

_ENDPOINT_KEPT = {
    "port": "web",
    "path": "/m",
    "interval": "15s",
    "relabelings": [{"action": "replace", "sourceLabels": ["a"], "targetLabel": "b"}],
}
_MONITOR_KEPT = {
    "jobLabel": "app",
    "podTargetLabels": ["team"],
    "selector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]}]},
    "namespaceSelector": {"any": True},
}
# Authentication: references (which Secret key, which file) are kept for /scrape_configs;
# a proxy URL (it may carry credentials) and oauth2's client id and secret are not.
_AUTH_REFERENCES = {
    "bearerTokenSecret": {"name": "token", "key": "t"},
    "tlsConfig": {"ca": {"secret": {"name": "ca", "key": "c"}}, "serverName": "web"},
    "basicAuth": {"password": {"name": "pw", "key": "p"}},
    "authorization": {"type": "Bearer", "credentials": {"name": "a", "key": "k"}},
}
_AUTH = {
    **_AUTH_REFERENCES,
    "oauth2": {"tokenUrl": "https://idp/token", "clientSecret": {"name": "o", "key": "s"},
               "clientId": {"secret": {"name": "o", "key": "id"}}},
    "proxyUrl": "http://user:password@proxy:3128",
}  # fmt: skip
_AUTH_KEPT = {**_AUTH_REFERENCES, "oauth2": {"tokenUrl": "https://idp/token"}}
RAW_SERVICEMONITOR = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": meta(),
    "spec": {**_MONITOR_KEPT, "targetLabels": ["tier"], "sampleLimit": 5, "replicas": 2,
             "endpoints": [{**_ENDPOINT_KEPT, **_AUTH}]},
}  # fmt: skip
TRIMMED_SERVICEMONITOR = {
    "metadata": KEPT_META,
    "spec": {**_MONITOR_KEPT, "targetLabels": ["tier"], "sampleLimit": 5,
             "endpoints": [{**_ENDPOINT_KEPT, **_AUTH_KEPT}]},
}  # fmt: skip
RAW_PODMONITOR = {
    "metadata": meta(),
    "spec": {
        **_MONITOR_KEPT,
        "podMetricsEndpoints": [{**_ENDPOINT_KEPT, "portNumber": 9, **_AUTH}],
    },
}
TRIMMED_PODMONITOR = {
    "metadata": KEPT_META,
    "spec": {
        **_MONITOR_KEPT,
        "podMetricsEndpoints": [{**_ENDPOINT_KEPT, "portNumber": 9, **_AUTH_KEPT}],
    },
}


@pytest.mark.parametrize(
    ("resource", "raw", "expected"),
    [
        (Resource.PODS, RAW_POD, TRIMMED_POD),
        (Resource.SERVICES, RAW_SERVICE, TRIMMED_SERVICE),
        (Resource.ENDPOINTS, RAW_ENDPOINTS, TRIMMED_ENDPOINTS),
        (Resource.ENDPOINTSLICES, RAW_SLICE, TRIMMED_SLICE),
        (Resource.INGRESSES, RAW_INGRESS, TRIMMED_INGRESS),
        (Resource.NODES, RAW_NODE, TRIMMED_NODE),
        (
            Resource.NAMESPACES,
            {
                "metadata": NODE_META,
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
            {"metadata": NODE_META},
        ),
        (Resource.REPLICASETS, RAW_REPLICASET, TRIMMED_REPLICASET),
        (Resource.JOBS, RAW_REPLICASET, TRIMMED_REPLICASET),
        (Resource.SERVICEMONITORS, RAW_SERVICEMONITOR, TRIMMED_SERVICEMONITOR),
        (Resource.PODMONITORS, RAW_PODMONITOR, TRIMMED_PODMONITOR),
    ],
)
def test_trim_whole_object(resource: Resource, raw: dict[str, Any], expected: Any) -> None:
    assert trim.trim(resource, raw, drop_annotations=DROP) == expected


def test_secrets_never_survive() -> None:
    out = orjson.dumps(trim.trim(Resource.PODS, RAW_POD, drop_annotations=DROP))
    for secret in (b"hunter2", b"web-token", b"registry", b"managedFields", b"volumes", b"env"):
        assert secret not in out


def test_annotations_kept_unless_dropped() -> None:
    kept = trim.trim(Resource.SERVICES, RAW_SERVICE, drop_annotations=trim.DropAnnotations())
    assert LAST_APPLIED in kept["metadata"]["annotations"]


def test_input_is_not_mutated() -> None:
    before = orjson.dumps(RAW_POD)
    trim.trim(Resource.PODS, RAW_POD, drop_annotations=DROP)
    assert orjson.dumps(RAW_POD) == before


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "pod",
        {},
        {"metadata": {}},
        {"metadata": {"name": ""}},
        {"metadata": {"name": "x", "namespace": 3}},
        {"metadata": {"name": "x", "labels": {"a": 1}}},
        {"metadata": {"name": "x", "annotations": ["a"]}},
        {"metadata": {"name": "x"}, "spec": "oops"},
        {"metadata": {"name": "x"}, "spec": {"containers": ["oops"]}},
    ],
)
def test_bad_shapes_raise_trim_error(raw: Any) -> None:
    with pytest.raises(trim.TrimError):
        trim.trim(Resource.PODS, raw, drop_annotations=DROP)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"metadata": {"name": "n", "namespace": "ns"}}, "ns/n"),
        ({"metadata": {"name": "node-a"}}, "node-a"),
        ({"metadata": {"name": "node-a", "namespace": ""}}, "node-a"),
    ],
)
def test_key_of(raw: dict[str, Any], key: str) -> None:
    assert trim.key_of(raw) == key


def test_every_resource_has_a_spec() -> None:
    assert set(trim.SPECS) == set(Resource)


def annotated(annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "web-1", "namespace": "shop", "annotations": annotations}}


def kept_keys(drop: trim.DropAnnotations, annotations: dict[str, str]) -> set[str]:
    out = trim.trim(Resource.SERVICES, annotated(annotations), drop_annotations=drop)
    return set(out["metadata"]["annotations"])


ANNOTATIONS = {
    LAST_APPLIED: "{...}",
    "kapp.k14s.io/original": "{...}",
    "kapp.k14s.io/identity": "v1;shop/web",
    "objectset.rio.cattle.io/applied": "H4sI...",
    "prometheus.io/port": "8080",
    "example.com/debug-dump": "...",
    "example.com/debug": "on",
}


def test_default_drops_annotations_that_carry_whole_manifests() -> None:
    drop = trim.DropAnnotations.of(ProducerSettings(cluster="c1").drop_annotations)
    assert kept_keys(drop, ANNOTATIONS) == {
        "kapp.k14s.io/identity",
        "prometheus.io/port",
        "example.com/debug-dump",
        "example.com/debug",
    }


def test_entries_ending_in_a_star_are_prefixes() -> None:
    drop = trim.DropAnnotations.of(["kapp.k14s.io/*", LAST_APPLIED])
    assert kept_keys(drop, ANNOTATIONS) == {
        "objectset.rio.cattle.io/applied",
        "prometheus.io/port",
        "example.com/debug-dump",
        "example.com/debug",
    }


def test_patterns_match_whole_keys() -> None:
    drop = trim.DropAnnotations.of([], [r"example\.com/debug-.*", r".*\.cattle\.io/applied"])
    assert kept_keys(drop, ANNOTATIONS) == {
        LAST_APPLIED,
        "kapp.k14s.io/original",
        "kapp.k14s.io/identity",
        "prometheus.io/port",
        "example.com/debug",  # `debug-.*` must match the whole key
    }


def test_a_pattern_may_carry_inline_flags() -> None:
    """Each pattern is compiled alone, as settings validated it: `(?i)` applies to it only."""
    patterns = ProducerSettings(
        cluster="c1", drop_annotation_patterns=(r"(?i)EXAMPLE\.COM/DEBUG-.*", r"kapp\..*")
    ).drop_annotation_patterns
    drop = trim.DropAnnotations.of([], patterns)
    assert kept_keys(drop, ANNOTATIONS | {"KAPP.k14s.io/x": "y"}) == {
        LAST_APPLIED,
        "objectset.rio.cattle.io/applied",
        "prometheus.io/port",
        "example.com/debug",
        "KAPP.k14s.io/x",  # the other pattern stays case-sensitive
    }


def test_nothing_to_drop_keeps_every_annotation() -> None:
    assert not trim.DropAnnotations.of([], [])
    assert kept_keys(trim.DropAnnotations.of([], []), ANNOTATIONS) == set(ANNOTATIONS)


@pytest.mark.parametrize(
    ("settings", "path"),
    [
        ({"drop_annotations": ["a/*b"]}, "drop_annotations.0"),
        ({"drop_annotations": ["ok", "**"]}, "drop_annotations.1"),
        ({"drop_annotations": [""]}, "drop_annotations.0"),
        ({"drop_annotation_patterns": ["ok", "(unclosed"]}, "drop_annotation_patterns.1"),
    ],
)
def test_bad_drop_entries_are_rejected_at_load_naming_the_field(
    settings: dict[str, Any], path: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ProducerSettings(cluster="c1", **settings)
    (error,) = caught.value.errors()
    assert ".".join(str(p) for p in error["loc"]) == path
