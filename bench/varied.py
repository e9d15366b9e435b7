"""bench/varied: a less uniform copy of bench/kit.py's workload, for measuring bytes.

kit's pods differ only in a counter (their target groups compress ~72x), which flatters
anything measured after compression. Here each Deployment has its own label and
annotation set (3-11 labels, Helm-style names and versions, config checksums, a sidecar
status blob on some), each pod a random template hash suffix, UUID, node and scattered
IP, calico annotations carrying its IP and a container ID, and 1-3 containers with their
own ports and images: what a real cluster's pods look like to the pod and endpointslice
roles. Deterministic (seeded by the index); same keys, namespaces and slice membership
rules as kit's objects, so the same jobs select them. IPs are data only.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any

import kit

Body = dict[str, Any]
NODES = 200
DEPLOYMENTS = 500
WORDS = ("api", "auth", "billing", "cart", "checkout", "search", "gateway", "ledger",
         "mailer", "orders", "payments", "profile", "ranker", "reports", "session",
         "worker")  # fmt: skip
TEAMS = ("core", "data", "growth", "infra", "platform", "risk")


def _hex(seed: str, n: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _rng(*parts: object) -> random.Random:
    return random.Random("/".join(map(str, parts)))


def deployment(d: int) -> dict[str, Any]:
    """The labels, annotations and containers every pod of Deployment d shares."""
    rng = _rng("deployment", d)
    app = f"{WORDS[d % len(WORDS)]}-{WORDS[(d // len(WORDS)) % len(WORDS)]}-{d}"
    version = f"{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": f"{app}-prod",
              "pod-template-hash": _hex(f"tpl{d}", 10)}  # fmt: skip
    optional = {
        "app.kubernetes.io/version": version, "app.kubernetes.io/component": rng.choice(
            ("server", "worker", "cron", "frontend")),
        "app.kubernetes.io/part-of": WORDS[d % 7], "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": f"{app}-{version}", "team": rng.choice(TEAMS),
        "env": rng.choice(("prod", "prod", "staging")), "security.istio.io/tlsMode": "istio",
    }  # fmt: skip
    labels.update(rng.sample(sorted(optional.items()), rng.randint(0, len(optional))))
    annotations = {"checksum/config": _hex(f"cfg{d}", 64)}
    if rng.random() < 0.7:
        annotations |= {"prometheus.io/scrape": "true", "prometheus.io/port": str(
            rng.choice((8080, 9090, 9102, 15020))), "prometheus.io/path": "/metrics"}  # fmt: skip
    if rng.random() < 0.4:
        annotations["sidecar.istio.io/status"] = (
            '{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":'
            '["istio-envoy","istio-data","istio-podinfo","istio-token"],"imagePullSecrets":'
            f'null,"revision":"1-{rng.randint(17, 22)}-{rng.randint(0, 5)}"}}'
        )
    if rng.random() < 0.5:
        annotations["kubectl.kubernetes.io/restartedAt"] = (
            f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        )
    containers = [
        {"name": name, "image": f"registry.example/{team}/{name}:{version}-{_hex(name + app, 7)}",
         "ports": [{"name": pname, "containerPort": port, "protocol": "TCP"}
                   for pname, port in rng.sample([("http", 8080), ("grpc", 9000),
                                                  ("metrics", 9090), ("admin", 8558),
                                                  ("health", 8086)], rng.randint(1, 3))]}
        for name, team in [(app, rng.choice(TEAMS))]
        + ([("istio-proxy", "istio")] if "sidecar.istio.io/status" in annotations else [])
        + ([("log-shipper", "obs")] if rng.random() < 0.2 else [])
    ]  # fmt: skip
    return {"app": app, "labels": labels, "annotations": annotations, "containers": containers}


DEPLOYMENT_CACHE: dict[int, dict[str, Any]] = {}


def shared(d: int) -> dict[str, Any]:
    if d not in DEPLOYMENT_CACHE:
        DEPLOYMENT_CACHE[d] = deployment(d)
    return DEPLOYMENT_CACHE[d]


def pod_name(i: int) -> str:
    """Same key scheme as kit (slices point at `app-{i % 500}-{i}`), so pods and slices
    join; the randomness is in the labels, not the key."""
    return f"app-{i % DEPLOYMENTS}-{i}"


def pod_ip(i: int) -> str:
    n = (i * 2654435761) % (1 << 20)  # odd multiplier: a bijection, scattered
    return f"10.{128 + (n >> 16)}.{(n >> 8) & 255}.{n & 255}"


def node(i: int) -> tuple[str, str]:
    k = _rng("node", i).randrange(NODES)
    a, b = k >> 4, (k * 37) % 250 + 2
    return f"ip-10-0-{a}-{b}.ec2.internal", f"10.0.{a}.{b}"


def with_status(i: int, *, namespaces: int) -> Body:
    """Pod i as a LIST returns it."""
    d = shared(i % DEPLOYMENTS)
    rng = _rng("pod", i)
    ip, (node_name, host) = pod_ip(i), node(i)
    container_id = _hex(f"ctr{i}", 64)
    day, hour, minute = rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59)
    started = f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z"
    labels = dict(d["labels"])
    if rng.random() < 0.1:  # a StatefulSet-like pod: per-pod labels
        labels["statefulset.kubernetes.io/pod-name"] = pod_name(i)
        labels["controller-revision-hash"] = f"{d['app']}-{_hex(f'rev{i}', 10)}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": pod_name(i), "namespace": kit.namespace_of(i, namespaces),
            "uid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "resourceVersion": str(1000 + i), "labels": labels,
            "annotations": {**d["annotations"], "cni.projectcalico.org/podIP": f"{ip}/32",
                            "cni.projectcalico.org/podIPs": f"{ip}/32",
                            "cni.projectcalico.org/containerID": container_id},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": f"{d['app']}-{d['labels']['pod-template-hash']}",
                                 "uid": f"uid-rs-{i % DEPLOYMENTS}", "controller": True}],
        },
        "spec": {"nodeName": node_name, "containers": d["containers"]},
        "status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host,
            "hostIPs": [{"ip": host}], "startTime": started, "qosClass": "Burstable",
            "conditions": kit.READY,
            "containerStatuses": [
                {"name": c["name"], "ready": True, "started": True, "restartCount":
                 rng.choice((0, 0, 0, 1, 3)), "image": c["image"], "imageID": "",
                 "containerID": "containerd://" + _hex(f"{i}{c['name']}", 64),
                 "state": {"running": {"startedAt": started}}}
                for c in d["containers"]],
        },
    }  # fmt: skip


def service(j: int, *, namespaces: int) -> Body:
    body = kit.service(j, namespaces=namespaces)
    d = shared(j % DEPLOYMENTS)
    body["metadata"]["labels"] = {**body["metadata"]["labels"], **{
        k: v for k, v in d["labels"].items() if k != "pod-template-hash"}}  # fmt: skip
    return body


def endpointslice(j: int, *, per_slice: int, pods: int, namespaces: int) -> Body:
    """kit's slice j with the varied pods' IPs and nodes."""
    body = kit.endpointslice(j, per_slice=per_slice, pods=pods, namespaces=namespaces)
    for endpoint in body["endpoints"]:
        m = int(endpoint["targetRef"]["name"].rsplit("-", 1)[1])
        endpoint["addresses"] = [pod_ip(m)]
        endpoint["nodeName"] = node(m)[0]
    return body
