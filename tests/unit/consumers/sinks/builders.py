"""Target groups and records for the sink tests (unit and integration)."""

from __future__ import annotations

from schemas.targets import TargetGroup, encode
from schemas.topics import Source, TargetKey, target_key


def group(job: str, cluster: str, name: str, *addresses: str, ns: str = "default") -> TargetGroup:
    """A pod group whose targets carry a per-target label, like a role builds."""
    return TargetGroup(
        job=job,
        cluster=cluster,
        source=f"pod/{ns}/{name}",
        labels={
            "__meta_kubernetes_namespace": ns,
            "__meta_kubernetes_pod_name": name,
            "cluster": cluster,
        },
        targets=[
            {"__address__": address, "__meta_kubernetes_pod_container_port_number": port}
            for address in addresses
            for port in [address.rpartition(":")[2]]
        ],
    )


def key(g: TargetGroup) -> TargetKey:
    return target_key(g.job, g.cluster, Source(g.source))


def record(g: TargetGroup) -> tuple[bytes, bytes]:
    return key(g).encode(), encode(g)
