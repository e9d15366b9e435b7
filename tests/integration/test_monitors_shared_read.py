"""One process (`sdstream consume`, mode all) reads the monitor and Namespace topics once:
the fold's table consumer, which reads them whole on every member anyway, hands the
records to the sinks' monitor reader. A serve-only replica still reads them itself, and
both serve the same monitor jobs as they appear, change and vanish."""

from __future__ import annotations

import asyncio

from schemas.topics import Resource, object_topic
from tests.integration import events
from tests.integration.test_consume import Running, addresses, consumer
from tests.integration.test_consume import settings as consumer_settings
from tests.integration.test_monitors_refusals import (
    JOB,
    NS,
    monitors_config,
    namespace,
    pod,
    pod_monitor,
    setup_topics,
)
from tests.unit.consumers.sinks.http_client import fetch


async def until_unknown(running: Running, job: str) -> None:
    async with asyncio.timeout(60):
        while (await fetch(running.address, path=f"/http_sd/{job}")).status != 404:  # noqa: ASYNC110 - polling a server
            await asyncio.sleep(0.1)


async def test_one_process_reads_the_monitor_topics_once_and_serves_what_a_replica_serves(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await setup_topics(kafka_bootstrap, topic_prefix, "a")
    base = consumer_settings(kafka_bootstrap, topic_prefix, group=f"{topic_prefix}-fold")
    first, second = JOB.format(ns=NS, name="pm"), JOB.format(ns=NS, name="pm2")
    monitors = object_topic(topic_prefix, "a", Resource.PODMONITORS)
    async with events.Writer(kafka_bootstrap, topic_prefix) as writer:
        await writer.put("a", Resource.NAMESPACES, namespace())
        await writer.put("a", Resource.PODS, pod("web-0", "10.244.13.1"))
        await writer.put("a", Resource.PODMONITORS, pod_monitor("pm"))
        async with (
            consumer(monitors_config(base, mode="all")) as one,
            consumer(monitors_config(base, mode="serve")) as replica,
        ):
            both = (one, replica)
            for running in both:
                found = await running.until(first, lambda e: len(e) == 1)
                assert addresses(found) == ["10.244.13.1:9090"]
            await writer.put("a", Resource.PODMONITORS, pod_monitor("pm2"))
            await writer.delete("a", Resource.PODMONITORS, NS, "pm")
            for running in both:
                await running.until(second, lambda e: len(e) == 1)
                await until_unknown(running, first)

            folded = one.metric("sdstream_fold_events_total", cluster="a", resource="podmonitors")
            assert folded == 3
            assert one.metric("sdstream_sink_monitor_records_total", topic=monitors) == 0
            assert replica.metric("sdstream_sink_monitor_records_total", topic=monitors) == 3
