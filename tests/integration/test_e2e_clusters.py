"""End to end, two clusters into one consumer: each cluster's targets, and only its own,
under its `cluster` label.

A second etcd + kube-apiserver pair (cluster `b`) runs beside the session's (cluster `a`).
Both clusters hold a pod of the same namespace, name and IP, so their groups have the same
Prometheus source and differ only by cluster: a consumer that keyed anything by source
alone would merge or lose them. Judged, cluster by cluster, by promtool's kubernetes_sd of
each API server, and by promtool's http_sd of `/http_sd/<job>?cluster=...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from sdstream.devstack import build, cache, stack
from tests.integration import e2e_pipeline as e2e
from tests.integration import objects
from tests.naming import unique


@pytest.fixture(scope="session")
def second_kubeconfig(
    stack_: stack.Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A second API server with its own etcd, stopped at the end of the session."""
    root = cache.cache_dir()
    built = {"etcd": build.ensure_etcd(root), "kube-apiserver": build.ensure_kube_apiserver(root)}
    run_dir = tmp_path_factory.mktemp("cluster-b")
    second = stack.Stack(run_dir=str(run_dir))
    try:
        stack._start_cluster(second, built, run_dir, suffix="-b")
        yield Path(second.kubeconfigs[0])
    finally:
        stack.down_stack(second, remove=False)


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


def populate(api: client.ApiClient, ns: str, *, own: list[tuple[str, str]]) -> None:
    """The shared pod `web-0` (same IP in both clusters) and a slice for it, plus `own`
    pods (name, IP) that only this cluster has."""
    pods = [("web-0", "10.244.8.1"), *own]
    for name, ip in pods:
        objects.create_pod(api, ns, name, ip=ip, node="node-1", labels={"app": "web"})
    endpoints = [{"addresses": [ip], "targetRef": {"kind": "Pod", "namespace": ns, "name": name}}
                 for name, ip in pods]  # fmt: skip
    objects.create_endpointslice(api, ns, "web-abc", service="web", endpoints=endpoints,
                                 ports=[{"name": "http", "port": 8080}])  # fmt: skip


async def test_two_clusters_feed_one_job_each_under_its_cluster_label(
    env: e2e.Env,
    second_kubeconfig: Path,
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    api_b = config.new_client_from_config(config_file=str(second_kubeconfig))  # type: ignore[no-untyped-call]
    kubeconfigs = {"a": env.kubeconfig, "b": second_kubeconfig}
    try:
        objects.create_namespace(api_b, namespace)
        populate(env.kube_api, namespace, own=[("a-1", "10.244.8.2")])
        populate(api_b, namespace, own=[("b-1", "10.244.9.2"), ("b-2", "10.244.9.3")])
        mine = {"names": [namespace]}
        sd_configs = {"pods": {"role": "pod", "namespaces": mine},
                      "slices": {"role": "endpointslice", "namespaces": mine}}  # fmt: skip
        producers = [
            e2e.RunningProducer(e2e.producer_settings(
                cluster=name, bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
                kubeconfig=path, namespace=namespace))
            for name, path in kubeconfigs.items()
        ]  # fmt: skip
        consumer = e2e.RunningConsumer(e2e.consumer_settings(
            bootstrap=env.kafka_bootstrap, prefix=topic_prefix, jobs=sd_configs,
            group=unique("g")))  # fmt: skip

        async def oracle() -> dict[str, e2e.Targets]:
            """Per `job/cluster`: promtool's kubernetes_sd of that cluster's API server."""
            return await e2e.gather({
                f"{job}/{name}": e2e.kubernetes_sd(env.promtool, sd, kubeconfig=path,
                                                   tmp_path=tmp_path)
                for job, sd in sd_configs.items() for name, path in kubeconfigs.items()
            })  # fmt: skip

        async with e2e.running(*producers, consumer):
            expected = await oracle()
            for job in sd_configs:
                a, b = expected[f"{job}/a"], expected[f"{job}/b"]
                assert a, b
                both = await e2e.converge(consumer, job, a + b)
                assert e2e.clusters_of(both) == {"a", "b"}
                for name in kubeconfigs:
                    one = await e2e.converge(
                        consumer, job, expected[f"{job}/{name}"], query=f"?cluster={name}"
                    )
                    assert e2e.clusters_of(one) == {name}
            queries = {"a": "?cluster=a", "b": "?cluster=b", "": ""}
            via_http = await e2e.gather({
                f"{job}/{name}": e2e.http_sd(env.promtool, consumer.url(job, query),
                                             tmp_path=tmp_path)
                for job in sd_configs for name, query in queries.items()
            })  # fmt: skip
            for job in sd_configs:
                for name in kubeconfigs:
                    assert via_http[f"{job}/{name}"] == expected[f"{job}/{name}"], (job, name)
                assert via_http[f"{job}/"] == expected[f"{job}/a"] + expected[f"{job}/b"]

            # the shared pod goes in b only: a's identical group must stay
            objects.delete_pod(api_b, namespace, "web-0")
            client.DiscoveryV1Api(api_b).delete_namespaced_endpoint_slice("web-abc", namespace)
            after = await oracle()
            assert after["pods/a"] == expected["pods/a"]
            assert not after["slices/b"]
            for job in sd_configs:
                await e2e.converge(consumer, job, after[f"{job}/a"] + after[f"{job}/b"])
                await e2e.converge(consumer, job, after[f"{job}/a"], query="?cluster=a")
    finally:
        api_b.close()
