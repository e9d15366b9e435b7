"""End to end, a restart of the default one process: the sinks serve the targets topic (the
fold's last published answer, what a `--mode serve` replica serves) as soon as they have
read it, before the fold has rebuilt anything; the fold's full sync then writes and shows
what changed while the process was down, and nothing stale stays (docs/RELIABILITY.md,
"One process restarted").

The fold's first rebuild is held until the test lets it go (its `rebuilding` steps wait;
our own object, no library patched), so "before the fold's rebuild is done" is a state
the test observes, not a race it hopes to win.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from consumers.compactor import kafka_loop
from schemas.topics import Resource, object_topic, targets_topic
from sdstream import consume
from tests.integration import e2e_pipeline as e2e
from tests.integration import kafka_helpers, objects
from tests.integration import promtool as oracle
from tests.naming import unique

MERGE = "application/merge-patch+json"
Steps = Generator[None, None, Any]


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


def held(rebuilding: Callable[..., Steps], until: Callable[[], bool]) -> Callable[..., Steps]:
    """`rebuilding`, whose steps start only once `until()`: the fold's rebuild yields to
    the event loop between steps, so the rest of the process runs meanwhile."""

    def steps(*args: Any, **kwargs: Any) -> Steps:
        while not until():
            yield
        return (yield from rebuilding(*args, **kwargs))

    return steps


async def published(env: e2e.Env, prefix: str, namespace: str, *, gone: str, new: str) -> None:
    """Until the producer has published `gone`'s tombstone and `new` to the pods topic."""
    topic = object_topic(prefix, "c1", Resource.PODS)

    async with asyncio.timeout(60):
        while True:
            records = await kafka_helpers.read_all(env.kafka_bootstrap, topic)
            last = {r.key: r.value for r in records}
            if last.get(f"{namespace}/{gone}".encode(), b"") is None and last.get(
                f"{namespace}/{new}".encode()
            ):
                return
            await asyncio.sleep(0.1)


async def test_a_restart_serves_the_topic_first_then_what_changed_while_down(
    env: e2e.Env, namespace: str, topic_prefix: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    api, node = env.kube_api, unique("node")
    objects.create_node(api, node, address="10.1.9.1")
    for i, name in enumerate(("web-0", "web-1", "web-2")):
        objects.create_pod(api, namespace, name, ip=f"10.244.9.{i + 1}", node=node,
                           labels={"app": "web"})  # fmt: skip
    sd = {"role": "pod", "namespaces": {"names": [namespace]}}
    producer = e2e.RunningProducer(e2e.producer_settings(
        bootstrap=env.kafka_bootstrap, prefix=topic_prefix, kubeconfig=env.kubeconfig,
        namespace=namespace,
    ))  # fmt: skip
    settings = e2e.consumer_settings(bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
                                     jobs={"pods": sd}, group=unique("g"))  # fmt: skip
    promtool = env.promtool, env.kubeconfig

    async def discovered() -> e2e.Targets:
        return await e2e.kubernetes_sd(promtool[0], sd, kubeconfig=promtool[1], tmp_path=tmp_path)

    async with e2e.running(producer):
        first = e2e.RunningConsumer(settings)
        async with e2e.running(first):
            before = await discovered()
            await e2e.converge(first, "pods", before)
        # while no consumer runs: a pod deleted, one added, one relabeled
        objects.delete_pod(api, namespace, "web-0")
        objects.create_pod(api, namespace, "web-3", ip="10.244.9.4", node=node)
        client.CoreV1Api(api).patch_namespaced_pod(
            "web-1", namespace, {"metadata": {"labels": {"version": "v2"}}}, _content_type=MERGE
        )
        after = await discovered()
        assert after != before
        await published(env, topic_prefix, namespace, gone="web-0", new="web-3")

        # the restart, its fold's first rebuild held until released
        built: list[kafka_loop.FoldLoop] = []
        released = False
        build_loop = consume.build_loop

        def build_held(*args: Any, **kwargs: Any) -> kafka_loop.FoldLoop:
            loop = build_loop(*args, **kwargs)
            loop.fold.rebuilding = held(loop.fold.rebuilding, lambda: released)  # type: ignore[method-assign]  # our own object, held for the test
            built.append(loop)
            return loop

        monkeypatch.setattr(consume, "build_loop", build_held)
        again = e2e.RunningConsumer(settings)
        try:
            await again.start()  # returns once /readyz says 200
            (loop,) = built
            assert not loop.ready(), "the fold has not synced: its rebuild is held"
            served = oracle.http_sd_targets(await again.entries("pods"))
            assert served == before, e2e.diff(served, before)  # the topic: web-0 still there

            released = True
            await e2e.wait_for(loop.ready, what="the fold's first sync")
            await e2e.converge(again, "pods", after)  # web-0 gone, web-1 relabeled, web-3
            # once the sinks have read back every record written, still nothing stale
            written = len(await kafka_helpers.read_all(env.kafka_bootstrap,
                                                       targets_topic(topic_prefix)))  # fmt: skip
            await e2e.wait_for(
                lambda: (
                    (again.registry.get_sample_value("sdstream_sink_records_total") or 0) >= written
                ),
                what="the sinks read the targets topic to its end",
            )
            via_http = await e2e.http_sd(env.promtool, again.url("pods"), tmp_path=tmp_path)
            assert via_http == after, e2e.diff(via_http, after)
        finally:
            released = True
            await again.stop()
