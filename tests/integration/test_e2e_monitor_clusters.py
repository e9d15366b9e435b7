"""One monitor, two clusters whose copies differ: two API servers -> producers -> Kafka ->
one consumer (fold and sinks), judged through its HTTP answers and the discovery page in
headless Chromium.

The PodMonitor `pods` exists in both clusters; b's copy scrapes every 30s instead of 15s
and drops pod web-1 with one more relabeling. Then:
- the job serves a's two targets and b's one (each cluster's own rules);
- the discovery page explains each target with its own cluster's rules: b's web-1 is
  dropped by b's rule (with a's rules alone it would be served), a's rules and b's are
  listed apart, and the overview and job page show the scrape parameters the clusters
  disagree on and that /scrape_configs uses a's (15s);
- `sdstream_sink_monitor_jobs_disagreeing` is 1 and the job is logged once; once b's copy
  agrees again the gauge is 0, the page shows no disagreement, and that is logged once.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import yaml
from kubernetes import client, config

from consumers.sinks import scrape_configs
from schemas.topics import Resource
from tests.integration import chromium, objects
from tests.integration import e2e_pipeline as e2e
from tests.integration import operator_oracle as operator
from tests.integration.test_discovery_page import clean, needs_browser, save
from tests.integration.test_e2e_clusters import second_kubeconfig  # noqa: F401 - fixture
from tests.integration.test_e2e_monitors import consumer_settings, create, label_namespace
from tests.integration.test_e2e_monitors import replace as replace_monitor
from tests.naming import unique
from tests.unit.consumers.sinks.http_client import fetch

JOB = "podMonitor/{ns}/pods/0"
DROP_WEB_1 = {"action": "drop", "sourceLabels": ["__meta_kubernetes_pod_name"], "regex": "web-1"}
GAUGE = "sdstream_sink_monitor_jobs_disagreeing"
DOM = {
    "disagreements": "Array.from(document.querySelectorAll('#disagreements tr')).slice(1)"
    ".map(r => Array.from(r.cells).map(c => c.innerText))",
    "parameters": "Array.from(document.querySelectorAll('#scrape-parameters tr'))"
    ".map(r => Array.from(r.cells).map(c => c.innerText))",
    "rules_of": "Array.from(document.querySelectorAll('h3.rules-of')).map(h => h.innerText)",
    "dropped": "Array.from(document.querySelectorAll('#targets tr.dropped'))"
    ".map(r => Array.from(r.cells).map(c => c.innerText))",
    "summary": "document.getElementById('summary')?.innerText",
    "scripts": "document.querySelectorAll('script').length",
}


def pod_monitor(ns: str, *, interval: str, extra: list[dict[str, Any]]) -> dict[str, Any]:
    endpoint = {"port": "web", "interval": interval, "relabelings": [
        {"action": "replace", "targetLabel": "team", "replacement": "shop"}, *extra]}  # fmt: skip
    return {
        "metadata": {"name": "pods", "namespace": ns},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "namespaceSelector": {"matchNames": [ns]},
                 "podMetricsEndpoints": [endpoint]},
    }  # fmt: skip


def seed(api: client.ApiClient, ns: str, subnet: int) -> None:
    node = unique("node")
    objects.create_node(api, node, address=f"10.1.{subnet}.11")
    for i in range(2):
        objects.create_pod(api, ns, f"web-{i}", ip=f"10.244.{subnet}.{i + 1}", node=node,
                           labels={"app": "web"},
                           containers=[objects.container("app", ("web", 8080, "TCP"))])  # fmt: skip


async def gauge(address: tuple[str, int]) -> float | None:
    reply = await fetch(address, path="/metrics")
    for line in reply.body.decode().splitlines():
        if line.startswith(GAUGE + " "):
            return float(line.split()[1])
    return None


async def until(what: str, check: Any) -> None:
    """Until `await check()` is true (a minute at most)."""
    try:
        async with asyncio.timeout(60):
            while True:
                if await check():
                    return
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not reached: {what}") from None


async def test_clusters_whose_monitors_differ_are_shown_counted_and_explained_apart(
    env: e2e.Env,
    second_kubeconfig: Path,  # noqa: F811 - the fixture imported above
    namespace: str,
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    needs_browser()
    api_b = config.new_client_from_config(config_file=str(second_kubeconfig))  # type: ignore[no-untyped-call]
    apis = {"a": env.kube_api, "b": api_b}
    kubeconfigs = {"a": env.kubeconfig, "b": second_kubeconfig}
    job = JOB.format(ns=namespace)
    try:
        objects.create_namespace(api_b, namespace)
        for subnet, api in enumerate(apis.values(), start=30):
            operator.install_crds(api)
            seed(api, namespace, subnet)
            label_namespace(api, namespace, "on")
        create(env.kube_api, [(Resource.PODMONITORS,
                               pod_monitor(namespace, interval="15s", extra=[]))])  # fmt: skip
        create(api_b, [(Resource.PODMONITORS,
                        pod_monitor(namespace, interval="30s", extra=[DROP_WEB_1]))])  # fmt: skip
        producers = [
            e2e.RunningProducer(e2e.producer_settings(
                cluster=name, bootstrap=env.kafka_bootstrap, prefix=topic_prefix,
                kubeconfig=path, namespace=namespace))
            for name, path in kubeconfigs.items()
        ]  # fmt: skip
        consumer = e2e.RunningConsumer(
            consumer_settings(env.kafka_bootstrap, topic_prefix, unique("g"), mode="all")
        )
        caplog.set_level(logging.INFO, logger=scrape_configs.__name__)
        async with e2e.running(*producers, consumer):
            address = consumer.address

            async def served(count: int) -> bool:
                reply = await fetch(address, path=f"/http_sd/{quote(job, safe='')}")
                return reply.status == 200 and len(orjson.loads(reply.body)) == count

            await until("a's 2 targets and b's 1", lambda: served(3))
            await until("the gauge at 1", lambda: _is(gauge(address), 1))
            reply = await fetch(address, path="/scrape_configs")
            (scraped,) = yaml.safe_load(reply.body)["scrape_configs"]
            assert scraped["scrape_interval"] == "15s"  # a's: the first cluster by name

            base = f"http://{address[0]}:{address[1]}"
            page = f"{base}/discovery/{quote(job, safe='')}"
            async with chromium.Browser.launch() as browser:
                overview = await browser.visit(f"{base}/", expressions=DOM)
                save(overview, "clusters-overview")
                clean(overview)
                assert overview.values["disagreements"] == [[job, "scrape_interval", "a"]]
                shown = await browser.visit(f"{page}?state=dropped", expressions=DOM)
                save(shown, "clusters-job")
                clean(shown)
                assert shown.values["summary"].startswith(
                    "4 targets discovered: 3 served, 1 dropped"
                )
                [(where, _, why)] = shown.values["dropped"]
                assert where.startswith("b\n"), where
                assert "web-1" in shown.text
                assert why.startswith("dropped by relabel_configs[")
                assert '"action":"drop"' in why
                assert "web-1" in why
                assert shown.values["rules_of"] == ["cluster a", "cluster b"]
                expected = [["parameter", "a (used)", "b"], ["scrape_interval", '"15s"', '"30s"']]
                assert shown.values["parameters"] == expected

                await agree_again(api_b, namespace, address, browser, page, served)
        said = [r.getMessage() for r in caplog.records if job in r.getMessage()]
        assert said == [
            f"Monitor job {job}: its clusters' monitors set different scrape_interval; "
            "/scrape_configs uses cluster a's (the first by name).",
            f"Monitor job {job}: its clusters no longer disagree.",
        ]
    finally:
        api_b.close()


async def agree_again(
    api_b: client.ApiClient,
    namespace: str,
    address: tuple[str, int],
    browser: chromium.Browser,
    page: str,
    served: Any,
) -> None:
    """b's copy made like a's: counted, shown (the log is checked by the caller)."""
    replace_monitor(api_b, Resource.PODMONITORS, pod_monitor(namespace, interval="15s", extra=[]))
    await until("b's 2 targets", lambda: served(4))
    await until("the gauge at 0", lambda: _is(gauge(address), 0))
    agreed = await browser.visit(page, expressions=DOM)
    clean(agreed)
    assert agreed.values["parameters"] == []
    assert agreed.values["rules_of"] == ["every cluster (a, b)"]
    assert agreed.values["summary"].startswith("4 targets discovered: 4 served")
    overview = await browser.visit(f"http://{address[0]}:{address[1]}/", expressions=DOM)
    assert overview.values["disagreements"] == []


async def _is(value: Any, expected: float) -> bool:
    return bool(await value == expected)


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)
