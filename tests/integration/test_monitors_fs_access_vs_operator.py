"""prometheus-operator as the judge of `monitors.arbitrary_fs_access_through_sms`
(docs/monitors.md "Trust"): ServiceMonitors naming files on the scraper's host
(bearerTokenFile, tlsConfig caFile/certFile/keyFile), and two whose TLS files are
invalid anyway (a client cert without a key, a key without a cert), are created in the
API server; one
operator run reconciles two Prometheus CRs, one with `arbitraryFSAccessThroughSMs.deny`
and one without, and sdstream's jobs (the monitors as the producer trims them, through
`select.all_jobs`) must be exactly the operator's jobs for each setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.dynamic import DynamicClient

from consumers.monitors import select
from producers import trim
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource
from tests.integration import operator_oracle as operator

SM = Resource.SERVICEMONITORS


def _create(api: client.ApiClient, body: dict[str, Any]) -> None:
    resource = DynamicClient(api).resources.get(
        api_version="monitoring.coreos.com/v1", kind=body["kind"]
    )
    resource.create(body=body, namespace=body["metadata"]["namespace"])


def service_monitors(ns: str) -> list[dict[str, Any]]:
    def monitor(name: str, *endpoints: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                "metadata": {"name": name, "namespace": ns},
                "spec": {"selector": {"matchLabels": {"app": name}},
                         "endpoints": [{"port": "web"}, *endpoints]}}  # fmt: skip

    token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    return [
        monitor("clean", {"port": "admin", "scheme": "https",
                          "tlsConfig": {"insecureSkipVerify": True, "serverName": "x"}}),
        monitor("token", {"port": "admin", "bearerTokenFile": token}),
        monitor("ca", {"port": "admin", "tlsConfig": {"caFile": "/etc/ssl/certs/ca.pem"}}),
        monitor("cert", {"port": "admin", "tlsConfig": {"certFile": "/c", "keyFile": "/k"}}),
        # Invalid even where files are allowed (TLSConfig.Validate): a cert without a key.
        monitor("certonly", {"port": "admin", "tlsConfig": {"certFile": "/c"}}),
        monitor("keyonly", {"port": "admin", "tlsConfig": {"keyFile": "/k"}}),
    ]  # fmt: skip


INVALID = ("certonly", "keyonly")


def ours(ns: str, made: list[dict[str, Any]], *, deny: bool) -> list[str]:
    settings = MonitorsSettings.model_validate({
        "service_monitor_selector": {}, "namespace": ns,
        "arbitrary_fs_access_through_sms": {"deny": deny},
    })  # fmt: skip
    none = trim.DropAnnotations()
    trimmed = [("c1", SM, trim.trim(SM, m, drop_annotations=none)) for m in made]
    found, _ = select.all_jobs(settings, trimmed, lambda c, n: None)
    return sorted(name for name, _ in found)


def cr(ns: str, name: str, *, deny: bool) -> dict[str, Any]:
    body = operator.prometheus_cr(ns, name, role="endpoints")
    body["spec"]["arbitraryFSAccessThroughSMs"] = {"deny": deny}
    return body


async def test_files_on_the_scrapers_host_are_refused_as_the_operator_refuses_them(
    kube_api: client.ApiClient, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    operator.install_crds(kube_api)
    made = service_monitors(namespace)
    for monitor in made:
        _create(kube_api, monitor)
    clean = [f"serviceMonitor/{namespace}/clean/{i}" for i in (0, 1)]
    every = sorted(f"serviceMonitor/{namespace}/{m['metadata']['name']}/{i}"
                   for m in made for i in (0, 1)
                   if m["metadata"]["name"] not in INVALID)  # fmt: skip
    with operator.running(kubeconfig, namespace, tmp_path / "operator.log"):
        _create(kube_api, cr(namespace, "allowed", deny=False))
        _create(kube_api, cr(namespace, "denied", deny=True))
        allowed = await operator.generated_config(kube_api, namespace, "allowed", jobs=len(every))
        denied = await operator.generated_config(kube_api, namespace, "denied", jobs=len(clean))
    theirs_allowed = sorted(j["job_name"] for j in allowed["scrape_configs"])
    theirs_denied = sorted(j["job_name"] for j in denied["scrape_configs"])
    assert (theirs_allowed, theirs_denied) == (every, clean)  # what the operator does
    assert ours(namespace, made, deny=False) == theirs_allowed
    assert ours(namespace, made, deny=True) == theirs_denied
    assert MonitorsSettings().arbitrary_fs_access_through_sms.deny  # the secure default
