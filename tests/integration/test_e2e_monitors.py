"""Monitor jobs served live, end to end: API server -> producer -> Kafka -> fold -> HTTP SD,
judged by prometheus-operator's generated config run through promtool (docs/monitors.md).

The monitors of test_monitors_vs_promtool (ServiceMonitors and a PodMonitor with
matchExpressions, named and numeric ports, targetPort, targetLabels, podTargetLabels,
jobLabel, own relabelings, several endpoints) are created in the API server; the
consumer's `monitors:` section selects them by a namespace label. Per job, promtool running
the operator's job (kubernetes_sd against the API server, the operator's rules, `$(SHARD)`
as 0) must keep the same final targets as promtool reading `/http_sd/<job>` with no rules.
Then, live: a monitor edited (an endpoint removed, relabelings changed), one deleted, one
created, the namespace label removed and put back; jobs appear and vanish (404 and
tombstones on the targets topic), a `--mode serve` replica restarted in the middle agrees.
After the first check the oracle is `consumers.monitors.jobs.generate` (held equal to the
operator's output by test_monitors_vs_operator) through promtool, so the operator runs once.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

from consumers.monitors import jobs as monitor_jobs
from consumers.sinks import file_sd
from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource, TargetKey, parse_target_key, targets_topic
from tests.integration import e2e_pipeline as e2e
from tests.integration import kafka_helpers, objects
from tests.integration import operator_oracle as operator
from tests.integration import relabel_oracle as oracle
from tests.integration.test_e2e_clusters import second_kubeconfig  # noqa: F401 - fixture
from tests.integration.test_monitors_vs_promtool import monitors, seed
from tests.naming import unique
from tests.unit.consumers.sinks.http_client import fetch

KIND = {Resource.SERVICEMONITORS: "ServiceMonitor", Resource.PODMONITORS: "PodMonitor"}
LABEL = "sdstream-test-monitors"
TMP_JOB = "__tmp_prometheus_job_name"
MERGE = "application/merge-patch+json"
Monitor = tuple[Resource, dict[str, Any]]


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


def consumer_settings(
    bootstrap: str, prefix: str, group: str, *, mode: str, file_sd_dir: Path | None = None
) -> ConsumerSettings:
    by_label = {"matchLabels": {LABEL: "on"}}
    return ConsumerSettings.model_validate({
        "kafka": KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        "file_sd_dir": file_sd_dir,
        "http": HttpSettings(port=0), "group_id": group, "mode": mode,
        "targets_partitions": e2e.PARTITIONS,
        "monitors": MonitorsSettings.model_validate({
            "service_monitor_selector": {}, "pod_monitor_selector": {},
            "service_monitor_namespace_selector": by_label,
            "pod_monitor_namespace_selector": by_label,
        }),
    })  # fmt: skip


def _resource(api: client.ApiClient, kind: str) -> Any:
    return DynamicClient(api).resources.get(api_version="monitoring.coreos.com/v1", kind=kind)


def create(api: client.ApiClient, made: Iterable[Monitor]) -> None:
    for resource, monitor in made:
        body = {"apiVersion": "monitoring.coreos.com/v1", "kind": KIND[resource], **monitor}
        _resource(api, KIND[resource]).create(body=body, namespace=monitor["metadata"]["namespace"])


def replace(api: client.ApiClient, resource: Resource, monitor: dict[str, Any]) -> None:
    found = _resource(api, KIND[resource])
    meta = monitor["metadata"]
    current = found.get(name=meta["name"], namespace=meta["namespace"])
    body = {"apiVersion": "monitoring.coreos.com/v1", "kind": KIND[resource], **monitor}
    body["metadata"] = {**meta, "resourceVersion": current.metadata.resourceVersion}
    found.replace(body=body, namespace=meta["namespace"])


def delete(api: client.ApiClient, resource: Resource, namespace: str, name: str) -> None:
    _resource(api, KIND[resource]).delete(name=name, namespace=namespace)


def label_namespace(api: client.ApiClient, namespace: str, value: str | None) -> None:
    body = {"metadata": {"labels": {LABEL: value}}}
    client.CoreV1Api(api).patch_namespace(namespace, body, _content_type=MERGE)


def generated(made: Sequence[Monitor]) -> list[dict[str, Any]]:
    """The operator's jobs for `made` (its order: ServiceMonitors, then PodMonitors)."""
    ordered = sorted(made, key=lambda m: (m[0] is Resource.PODMONITORS, m[1]["metadata"]["name"]))
    return [
        job for resource, monitor in ordered for job in monitor_jobs.generate(resource, monitor)
    ]


def _strip(found: Iterable[oracle.Final]) -> set[oracle.Final]:
    return {frozenset(x for x in t if x[0] != TMP_JOB) for t in found}


async def served(address: tuple[str, int], job: str, query: str = "") -> tuple[int, Any]:
    reply = await fetch(address, path=f"/http_sd/{job}{query}")
    return reply.status, orjson.loads(reply.body) if reply.body else None


def _addresses(entries: Any) -> set[str]:
    return {a for entry in entries for a in entry["targets"]}


async def wait_served(
    address: tuple[str, int], job: str, want: set[str] | None, query: str = ""
) -> None:
    """Until `job` serves exactly the addresses `want` (None: until it is unknown, 404)."""
    last: tuple[int, Any] = (0, None)

    def done() -> bool:
        status, body = last
        return status == 404 if want is None else status == 200 and _addresses(body) == want

    try:
        async with asyncio.timeout(60):
            while True:
                last = await served(address, job, query)
                if done():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{job}{query}: want {want}, last answer {last}") from None


async def judge(
    env: e2e.Env, address: tuple[str, int], theirs: Sequence[dict[str, Any]], tmp_path: Path,
    *, kubeconfig: Path | None = None, query: str = "",
) -> None:  # fmt: skip
    """Every job of `theirs` (operator shapes) is served with promtool's final targets of
    that job run against the API server."""
    kube = kubeconfig or env.kubeconfig
    expected = await oracle.run_all_async(
        env.promtool, [operator.for_promtool(job, kube) for job in theirs], tmp_path, wait="3s"
    )
    expected = [_strip(found) for found in expected]
    for job, found in zip(theirs, expected, strict=True):
        assert found, f"promtool keeps no target of {job['job_name']}"
        want = {dict(t)["__address__"] for t in found}
        await wait_served(address, job["job_name"], want, query)
    url = f"http://{address[0]}:{address[1]}/http_sd/"
    ours = await oracle.run_all_async(
        env.promtool,
        [{"http_sd_configs": [{"url": url + quote(j["job_name"], safe="") + query}]}
         for j in theirs],
        tmp_path, wait="3s",
    )  # fmt: skip
    for job, mine, found in zip(theirs, ours, expected, strict=True):
        assert _strip(mine) == found, f"{job['job_name']}:\n" + oracle.describe(mine, found)


async def same_file(directory: Path, address: tuple[str, int], job: str) -> None:
    """Until the job's file SD file holds what HTTP SD serves."""
    path = directory / file_sd.filename(job)
    status, body = await served(address, job)
    assert status == 200, body
    await e2e.wait_for(
        lambda: path.exists() and orjson.loads(path.read_bytes()) == body,
        what=f"{path} holding the HTTP SD answer of {job}", timeout_s=30,
    )  # fmt: skip


async def tombstoned(bootstrap: str, prefix: str, job: str) -> None:
    """Every key the targets topic ever held for `job` ends in a tombstone."""
    last: dict[bytes, bytes | None] = {}
    try:
        async with asyncio.timeout(30):
            while True:
                last = {}
                for record in await kafka_helpers.read_all(bootstrap, targets_topic(prefix)):
                    assert record.key is not None
                    if parse_target_key(TargetKey(record.key.decode()))[0] == job:
                        last[record.key] = record.value
                if last and all(value is None for value in last.values()):
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"{job}: keys not all tombstoned: {sorted(last)}") from None


async def test_monitor_jobs_are_served_live_as_the_operator_configures_them(
    env: e2e.Env, namespace: str, topic_prefix: str, tmp_path: Path
) -> None:
    api = env.kube_api
    operator.install_crds(api)
    seed(api, namespace)
    label_namespace(api, namespace, "on")
    made = monitors(namespace)
    create(api, made)
    group = unique("g")
    producer = e2e.RunningProducer(e2e.producer_settings(
        cluster="c1", bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
        kubeconfig=env.kubeconfig, namespace=namespace))  # fmt: skip
    folding = e2e.RunningConsumer(
        consumer_settings(env.kafka_bootstrap, topic_prefix, group, mode="all")
    )
    files = tmp_path / "file_sd"
    files.mkdir()
    replica = e2e.RunningConsumer(consumer_settings(
        env.kafka_bootstrap, topic_prefix, group, mode="serve", file_sd_dir=files))  # fmt: skip
    async with e2e.running(producer, folding, replica):
        # 1. the operator's own config as the judge, in both the folding process and a
        # serving replica
        with operator.running(env.kubeconfig, namespace, tmp_path / "operator.log"):
            create_cr = operator.prometheus_cr(namespace, "oracle", role="endpoints")
            _resource(api, "Prometheus").create(body=create_cr, namespace=namespace)
            generated_config = await operator.generated_config(api, namespace, "oracle", jobs=6)
        theirs = generated_config["scrape_configs"]
        assert [j["job_name"] for j in theirs] == [j["job_name"] for j in generated(made)]
        await judge(env, folding.address, theirs, tmp_path)
        await judge(env, replica.address, theirs, tmp_path)
        for job in theirs:
            await same_file(files, replica.address, job["job_name"])
        page = await fetch(folding.address, path=f"/discovery/{theirs[0]['job_name']}")
        assert page.status == 200, page

        # 2. live changes while the replica is down: an endpoint removed and relabelings
        # changed, a monitor deleted, a monitor created
        await replica.stop()
        web = copy.deepcopy(made[0][1])
        web["spec"]["endpoints"] = [{"port": "admin", "relabelings": [
            {"action": "replace", "targetLabel": "edited", "replacement": "yes"}]}]  # fmt: skip
        replace(api, Resource.SERVICEMONITORS, web)
        delete(api, Resource.SERVICEMONITORS, namespace, "canary")
        extra = copy.deepcopy(made[2][1])
        extra["metadata"]["name"] = "extra"
        extra["spec"]["podMetricsEndpoints"] = [{"port": "web"}]
        create(api, [(Resource.PODMONITORS, extra)])
        now = [(Resource.SERVICEMONITORS, web), made[2], (Resource.PODMONITORS, extra)]
        gone = [f"serviceMonitor/{namespace}/web/1", f"serviceMonitor/{namespace}/canary/0"]
        await judge(env, folding.address, generated(now), tmp_path)
        for job in gone:
            await wait_served(folding.address, job, None)
            await tombstoned(env.kafka_bootstrap, topic_prefix, job)
        await replica.start()  # restarted: the same answers from the topics
        await judge(env, replica.address, generated(now), tmp_path)
        for job in gone:
            await wait_served(replica.address, job, None)
            assert orjson.loads((files / file_sd.filename(job)).read_bytes()) == []

        # 3. the namespace leaves the namespace selector: every job vanishes; and is back
        label_namespace(api, namespace, None)
        for spec in generated(now):
            for address in (folding.address, replica.address):
                await wait_served(address, spec["job_name"], None)
            await tombstoned(env.kafka_bootstrap, topic_prefix, spec["job_name"])
        label_namespace(api, namespace, "on")
        await judge(env, folding.address, generated(now), tmp_path)
        await judge(env, replica.address, generated(now), tmp_path)


async def operator_config(
    api: client.ApiClient, kubeconfig: Path, namespace: str, log: Path, *, jobs: int
) -> list[dict[str, Any]]:
    """The operator's jobs for the monitors of `namespace` in the API server of `kubeconfig`."""
    with operator.running(kubeconfig, namespace, log):
        body = operator.prometheus_cr(namespace, "oracle", role="endpoints")
        _resource(api, "Prometheus").create(body=body, namespace=namespace)
        config = await operator.generated_config(api, namespace, "oracle", jobs=jobs)
    found: list[dict[str, Any]] = config["scrape_configs"]
    return found


async def test_the_same_monitors_in_two_clusters_make_one_job_per_endpoint_with_both(
    env: e2e.Env,
    second_kubeconfig: Path,  # noqa: F811 - the fixture imported above
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """Two API servers with the same monitors (cluster b has one more pod), a fold-only
    process and a serve-only one: each job carries both clusters under their cluster
    label, and `?cluster=` is that cluster's operator + promtool answer."""
    api_b = config.new_client_from_config(config_file=str(second_kubeconfig))  # type: ignore[no-untyped-call]
    apis = {"a": env.kube_api, "b": api_b}
    kubeconfigs = {"a": env.kubeconfig, "b": second_kubeconfig}
    try:
        objects.create_namespace(api_b, namespace)
        made = monitors(namespace)
        for api in apis.values():
            operator.install_crds(api)
            seed(api, namespace)
            label_namespace(api, namespace, "on")
            create(api, made)
        ports = [("web", 8080, "TCP"), ("admin", 8081, "TCP"), ("metrics", 9090, "TCP")]
        objects.create_pod(api_b, namespace, "web-b", ip="10.244.7.20", node="node-b",
                           labels={"app": "web", "env": "prod", "app.kubernetes.io/name": "w"},
                           containers=[objects.container("app", *ports)])  # fmt: skip
        group = unique("g")
        producers = [
            e2e.RunningProducer(e2e.producer_settings(
                cluster=name, bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
                kubeconfig=path, namespace=namespace))
            for name, path in kubeconfigs.items()
        ]  # fmt: skip
        fold = e2e.RunningConsumer(
            consumer_settings(env.kafka_bootstrap, topic_prefix, group, mode="fold")
        )
        serve = e2e.RunningConsumer(
            consumer_settings(env.kafka_bootstrap, topic_prefix, group, mode="serve")
        )
        theirs = {
            name: await operator_config(apis[name], path, namespace,
                                        tmp_path / f"operator-{name}.log", jobs=6)
            for name, path in kubeconfigs.items()
        }  # fmt: skip
        assert [j["job_name"] for j in theirs["a"]] == [j["job_name"] for j in theirs["b"]]
        async with e2e.running(*producers, fold, serve):
            for name, path in kubeconfigs.items():
                await judge(env, serve.address, theirs[name], tmp_path, kubeconfig=path,
                            query=f"?cluster={name}")  # fmt: skip
            for job in theirs["a"]:
                status, both = await served(serve.address, job["job_name"])
                assert status == 200, both
                assert e2e.clusters_of(both) == {"a", "b"}, job["job_name"]
                parts = [await served(serve.address, job["job_name"], f"?cluster={c}")
                         for c in kubeconfigs]  # fmt: skip
                assert sorted(map(orjson.dumps, both)) == sorted(
                    orjson.dumps(e) for _, body in parts for e in body
                )
            # the pod monitor goes in b only, while the fold is down: restarted, it
            # tombstones b's groups of those jobs, which keep a's targets alone
            await fold.stop()
            delete(api_b, Resource.PODMONITORS, namespace, "pods")
            await fold.start()
            pod_jobs = [j for j in theirs["a"] if j["job_name"].startswith("podMonitor/")]
            for job in pod_jobs:
                await wait_served(serve.address, job["job_name"], set(), "?cluster=b")
            await judge(env, serve.address, pod_jobs, tmp_path, kubeconfig=env.kubeconfig)
    finally:
        api_b.close()
