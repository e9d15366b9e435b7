"""The Target Allocator API sharing a monitor job among collectors, end to end: API server
-> producer -> Kafka -> consumer (`monitors.target_allocator`) -> its real HTTP server.

A PodMonitor selects 16 pods. With three collectors configured, each
`/ta/jobs/<job>/targets?collector_id=` share is the allocation of `consumers.sinks.allocation`,
none is empty, the shares are disjoint and together exactly the job's `/http_sd` answer
(labels included); an unknown collector gets `[]`; the form without `collector_id` lists
each collector with its share. A replica configured with a fourth collector moves only
the targets the new one wins. A pod added later lands in exactly one share.
No OpenTelemetry collector binary is run (none is installed here, and none is built).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
from kubernetes import client

from consumers.sinks import allocation
from schemas.config import ConsumerSettings
from schemas.scrape_configs import TargetAllocatorSettings
from schemas.topics import Resource
from tests.integration import e2e_pipeline as e2e
from tests.integration import objects
from tests.integration import operator_oracle as operator
from tests.integration.test_e2e_monitor_clusters import until
from tests.integration.test_e2e_monitors import consumer_settings, create, label_namespace
from tests.naming import unique
from tests.unit.consumers.sinks.http_client import fetch

FLEET = ["collector-0", "collector-1", "collector-2"]
PODS = 16


def sharing(settings: ConsumerSettings, collectors: list[str]) -> ConsumerSettings:
    assert settings.monitors is not None
    shared = TargetAllocatorSettings(collectors=tuple(collectors))
    monitors = settings.monitors.model_copy(update={"target_allocator": shared})
    return settings.model_copy(update={"monitors": monitors})


def add_pod(api: client.ApiClient, ns: str, node: str, i: int) -> None:
    objects.create_pod(api, ns, f"web-{i}", ip=f"10.244.40.{i + 1}", node=node,
                       labels={"app": "web"},
                       containers=[objects.container("app", ("web", 8080, "TCP"))])  # fmt: skip


async def get(address: tuple[str, int], path: str) -> Any:
    reply = await fetch(address, path=path)
    assert reply.status == 200, (path, reply.status, reply.body)
    return orjson.loads(reply.body)


def entries(found: list[Any]) -> list[bytes]:
    return sorted(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in found)


async def shares(address: tuple[str, int], link: str, collectors: list[str]) -> dict[str, Any]:
    return {c: await get(address, f"/ta{link}?collector_id={c}") for c in collectors}


def addresses(share: list[Any]) -> set[str]:
    return {e["targets"][0] for e in share}


async def test_each_collector_gets_its_share_of_a_monitor_job(
    kafka_bootstrap: str,
    kubeconfig: Path,
    kube_api: client.ApiClient,
    namespace: str,
    topic_prefix: str,
) -> None:
    operator.install_crds(kube_api)
    node = unique("node")
    objects.create_node(kube_api, node, address="10.1.40.11")
    for i in range(PODS):
        add_pod(kube_api, namespace, node, i)
    label_namespace(kube_api, namespace, "on")
    monitor = {"metadata": {"name": "pods", "namespace": namespace},
               "spec": {"selector": {"matchLabels": {"app": "web"}},
                        "podMetricsEndpoints": [{"port": "web"}]}}  # fmt: skip
    create(kube_api, [(Resource.PODMONITORS, monitor)])
    job = f"podMonitor/{namespace}/pods/0"
    link = f"/jobs/{quote_plus(job, safe='')}/targets"
    group = unique("g")
    producer = e2e.RunningProducer(e2e.producer_settings(
        cluster="c1", bootstrap=kafka_bootstrap, prefix=topic_prefix, kubeconfig=kubeconfig,
        namespace=namespace))  # fmt: skip
    three = e2e.RunningConsumer(
        sharing(consumer_settings(kafka_bootstrap, topic_prefix, group, mode="all"), FLEET)
    )
    four = e2e.RunningConsumer(sharing(
        consumer_settings(kafka_bootstrap, topic_prefix, group, mode="serve"),
        [*FLEET, "collector-3"]))  # fmt: skip
    async with e2e.running(producer, three, four):

        async def served(address: tuple[str, int], count: int) -> bool:
            found = await fetch(address, path=f"/http_sd/{quote(job, safe='')}")
            return found.status == 200 and len(orjson.loads(found.body)) == count

        for handle in (three, four):
            await until(f"{PODS} targets", lambda a=handle.address: served(a, PODS))
        listed = await get(three.address, "/ta/jobs")
        assert listed[job] == {"_link": link}
        whole = await get(three.address, f"/http_sd/{quote(job, safe='')}")
        mine = await shares(three.address, link, FLEET)
        assert all(mine.values())
        assert entries([e for share in mine.values() for e in share]) == entries(whole)
        expected = allocation.allocate(addresses(whole), allocation.Collectors.of(FLEET))
        assert {c: addresses(s) for c, s in mine.items()} == {
            c: set(s) for c, s in expected.items()
        }
        assert await get(three.address, f"/ta{link}?collector_id=nobody") == []
        each = await get(three.address, f"/ta{link}")
        assert list(each) == FLEET
        assert {c: each[c]["targets"] for c in FLEET} == mine

        # a fourth collector (another replica's settings): only its winnings move
        more = await shares(four.address, link, [*FLEET, "collector-3"])
        for collector in FLEET:
            assert addresses(more[collector]) <= addresses(mine[collector])
        moved = {a for c in FLEET for a in addresses(mine[c]) - addresses(more[c])}
        assert moved == addresses(more["collector-3"])

        # a new pod's target lands in exactly one share
        add_pod(kube_api, namespace, node, PODS)
        await until("one more target", lambda: served(three.address, PODS + 1))
        after = await shares(three.address, link, FLEET)
        new = "10.244.40.17:8080"
        assert [c for c in FLEET if new in addresses(after[c])] == [
            allocation.Collectors.of(FLEET).names[
                allocation.owner(new, allocation.Collectors.of(FLEET))
            ]
        ]
        assert entries([e for s in after.values() for e in s]) == entries(
            await get(three.address, f"/http_sd/{quote(job, safe='')}")
        )
