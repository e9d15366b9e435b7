"""GET /scrape_configs and the Target Allocator's /jobs from a running consumer, end to end:
API server -> producer -> Kafka -> fold -> sink, judged by prometheus-operator.

The monitors of test_monitors_vs_promtool and the scrape-parameter monitors of
test_monitors_vs_operator (scheme, path, params, intervals, TLS and authorization from
Secrets) run through the whole pipeline. The consumer's `/scrape_configs` is then fed to a
real promtool as is: each of its jobs (http_sd against the consumer, no relabel rules)
must keep the same final targets, scrape labels (`__scheme__`, `__metrics_path__`,
`__param_*`, intervals) included, as promtool running the operator's generated job
(kubernetes_sd against the API server, the operator's rules). `promtool check config`
accepts the document with the Secrets mounted as docs/monitors.md says; `/jobs` and
`/jobs/<job>/targets` have the allocator's shapes over the same targets; a monitor
change shows in `/scrape_configs`.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import orjson
import yaml

from schemas.config import ConsumerSettings, HttpSettings, KafkaSettings
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource
from tests.integration import e2e_pipeline as e2e
from tests.integration import operator_oracle as operator
from tests.integration import relabel_oracle as oracle
from tests.integration.test_e2e_monitors import (
    create,
    env,  # noqa: F401 - fixture
    label_namespace,
    operator_config,
    replace,
    wait_served,
)
from tests.integration.test_monitors_vs_operator import (
    _materialise,
    _secrets,
    _seed_secrets,
    scrape_monitors,
)
from tests.integration.test_monitors_vs_promtool import monitors, seed
from tests.naming import unique
from tests.unit.consumers.sinks.http_client import fetch

TMP_JOB = "__tmp_prometheus_job_name"


def settings(bootstrap: str, prefix: str, secrets_dir: Path) -> ConsumerSettings:
    by_label = {"matchLabels": {"sdstream-test-monitors": "on"}}
    return ConsumerSettings.model_validate({
        "kafka": KafkaSettings(bootstrap=bootstrap, topic_prefix=prefix),
        "http": HttpSettings(port=0), "group_id": unique("g"), "mode": "all",
        "targets_partitions": e2e.PARTITIONS,
        "monitors": MonitorsSettings.model_validate({
            "service_monitor_selector": {}, "pod_monitor_selector": {},
            "service_monitor_namespace_selector": by_label,
            "pod_monitor_namespace_selector": by_label,
            "scrape_configs": {"secrets_dir": str(secrets_dir),
                               "http_sd": {"refresh_interval": "5s"}},
        }),
    })  # fmt: skip


async def get(address: tuple[str, int], path: str, **headers: str) -> Any:
    reply = await fetch(address, path=path, headers=headers)
    assert reply.status == 200, (path, reply)
    return reply


def _strip(found: set[oracle.Final]) -> set[oracle.Final]:
    return {frozenset(x for x in t if x[0] != TMP_JOB) for t in found}


async def scrape_configs_when(
    address: tuple[str, int], names: list[str], want: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """/scrape_configs once it lists `names` (and the job `want["job_name"]` holds `want`)."""
    last: Any = None
    try:
        async with asyncio.timeout(60):
            while True:
                reply = await fetch(address, path="/scrape_configs")
                last = reply
                if reply.status == 200:
                    last = yaml.safe_load(reply.body)["scrape_configs"]
                    if [j["job_name"] for j in last] == names and (
                        want is None or any(want.items() <= j.items() for j in last)
                    ):
                        return list(last)
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"want {names} {want}, last {last}") from None


async def test_scrape_configs_make_prometheus_scrape_what_the_operator_configures(
    env: e2e.Env,  # noqa: F811 - the fixture imported above
    namespace: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    api = env.kube_api
    operator.install_crds(api)
    seed(api, namespace)
    secrets = _secrets(tmp_path)
    _seed_secrets(api, namespace, secrets)
    label_namespace(api, namespace, "on")
    made = monitors(namespace) + scrape_monitors(namespace)
    create(api, made)
    certs = tmp_path / "certs"
    _materialise(certs, namespace, secrets)
    theirs = await operator_config(api, env.kubeconfig, namespace, tmp_path / "operator.log",
                                   jobs=11)  # fmt: skip
    names = [job["job_name"] for job in theirs]
    producer = e2e.RunningProducer(e2e.producer_settings(
        cluster="c1", bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
        kubeconfig=env.kubeconfig, namespace=namespace))  # fmt: skip
    consumer = e2e.RunningConsumer(settings(env.kafka_bootstrap, topic_prefix, certs))
    async with e2e.running(producer, consumer):
        address = consumer.address
        ours = await scrape_configs_when(address, names)
        base = f"http://{address[0]}:{address[1]}/http_sd/"
        for job in ours:
            (sd,) = job["http_sd_configs"]
            assert sd["url"].startswith(base), sd
            assert sd["refresh_interval"] == "5s"
        expected = await oracle.run_all_async(
            env.promtool, [operator.for_promtool(j, env.kubeconfig) for j in theirs], tmp_path,
            wait="3s",
        )  # fmt: skip
        expected = [_strip(found) for found in expected]
        for name, found in zip(names, expected, strict=True):
            assert found, f"promtool keeps no target of {name}"
            await wait_served(address, name, {dict(t)["__address__"] for t in found})
        mine = await oracle.run_all_async(env.promtool, ours, tmp_path, wait="3s")
        for name, m, t in zip(names, mine, expected, strict=True):
            assert _strip(m) == t, f"{name}:\n" + oracle.describe(_strip(m), t)
        assert any(("__param_module", "a") in t for found in expected for t in found)

        document = tmp_path / "scrape_configs.yml"
        document.write_bytes((await get(address, "/scrape_configs")).body)
        checked = await asyncio.create_subprocess_exec(
            env.promtool, "check", "config", document,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        said, _ = await checked.communicate()
        assert checked.returncode == 0, said.decode()

        # The Target Allocator's shapes, over the same targets
        ta = orjson.loads((await get(address, "/ta/scrape_configs")).body)
        assert list(ta) == names
        assert ta == orjson.loads((await get(address, "/scrape_configs",
                                              accept="application/json")).body)  # fmt: skip
        listed = orjson.loads((await get(address, "/jobs")).body)
        assert set(listed) == set(names)
        for name in names:
            link = listed[name]["_link"]
            assert link == "/jobs/" + name.replace("/", "%2F") + "/targets"
            one = await get(address, link + "?collector_id=collector-0")
            sd = await get(address, "/http_sd/" + name.replace("/", "%2F"))
            assert one.body == sd.body
            by_collector = orjson.loads((await get(address, link)).body)
            assert by_collector["sdstream"]["targets"] == orjson.loads(sd.body)

        # A monitor change shows: the first endpoint's interval and path
        service = copy.deepcopy(made[0][1])
        service["spec"]["endpoints"][0] |= {"interval": "7s", "path": "/changed"}
        replace(api, Resource.SERVICEMONITORS, service)
        changed = {"job_name": f"serviceMonitor/{namespace}/web/0", "scrape_interval": "7s",
                   "metrics_path": "/changed"}  # fmt: skip
        await scrape_configs_when(address, names, changed)
