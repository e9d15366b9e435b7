"""HTTP SD over TLS with Prometheus-style authentication, against real servers.

Prometheus itself is the client: promtool's `http_sd_configs`, with `tls_config` (our CA
and a client certificate) and `basic_auth` or `authorization`, reads the real consumer's
endpoint and must discover exactly what its own `kubernetes_sd_configs` discovers from
the API server. The rest drives the real HTTP server (aiohttp) with the hooks built from a
web config file, over real TLS handshakes: who gets an answer, with which credentials,
probes open or closed, client certificates required, certificates replaced live.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import bcrypt
import orjson
import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from schemas.config import ConsumerSettings, HttpSettings
from sdstream import consume, http, web_config
from tests.integration import e2e_pipeline as e2e
from tests.integration import objects
from tests.integration import promtool as oracle
from tests.pki import Pki
from tests.unit.consumers.sinks.http_client import Response, fetch

PASSWORD = "pr0m-pässword"
TOKEN = "tok-7f3a9c2e"
HASHED = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()  # cost 4: fast tests
BASIC = {"Authorization": "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()}
BEARER = {"Authorization": f"Bearer {TOKEN}"}
WRONG_TOKEN = {"Authorization": "Bearer x"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    made = Pki(tmp_path_factory.mktemp("pki"))
    for ca in ("ca", "ca2", "rogue"):
        made.ca(ca)
    made.leaf("server", ca="ca")
    made.leaf("server2", ca="ca2")
    made.leaf("prometheus", ca="ca", san="DNS:prometheus")
    made.leaf("intruder", ca="rogue", san="DNS:prometheus")
    return made


def web_dir(pki: Pki, where: Path, *, client_auth: str | None = None, users: bool = True) -> Path:
    """A web config file beside copies of the server's files, named relatively (so they
    resolve against the file's directory, as Prometheus resolves them)."""
    where.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki.directory / "server.crt", where / "server.crt")
    shutil.copy(pki.directory / "server.key", where / "server.key")
    shutil.copy(pki.directory / "ca.crt", where / "clients.crt")
    tls: dict[str, Any] = {"cert_file": "server.crt", "key_file": "server.key"}
    if client_auth is not None:
        tls |= {"client_auth_type": client_auth, "client_ca_file": "clients.crt"}
    config: dict[str, Any] = {"tls_server_config": tls}
    if users:
        config["basic_auth_users"] = {"prometheus": HASHED}
    (where / "web.yml").write_text(json.dumps(config))  # JSON is YAML
    return where / "web.yml"


def client_tls(pki: Pki, *, trust: str = "ca", cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki.directory / f"{trust}.crt")
    if cert is not None:
        context.load_cert_chain(pki.directory / f"{cert}.crt", pki.directory / f"{cert}.key")
    return context


# --- promtool against the real pipeline --------------------------------------------------


class TlsConsumer:
    """`sdstream consume` in-process with TLS and credentials on its HTTP server."""

    def __init__(self, settings: ConsumerSettings, tls: ssl.SSLContext) -> None:
        self.settings, self.tls = settings, tls
        self.registry = CollectorRegistry()
        self.address: tuple[str, int] = ("127.0.0.1", 0)
        self._task: asyncio.Task[None] | None = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return await fetch(self.address, path=path, headers=headers, ssl=self.tls)

    async def start(self) -> None:
        started: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(
            consume.serve(self.settings, registry=self.registry, on_started=started.set_result)
        )
        async with asyncio.timeout(60):
            self.address = await asyncio.shield(started)
            while (await self.get("/readyz")).status != 200:
                assert not self._task.done(), self._task.result()
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def converge(self, job: str, expected: e2e.Targets) -> None:
        found: e2e.Targets = Counter()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):
                while found != expected:
                    reply = await self.get(f"/http_sd/{job}", BASIC)
                    if reply.status == 200:
                        found = oracle.http_sd_targets(orjson.loads(reply.body))
                    await asyncio.sleep(0.1)
        assert found == expected, e2e.diff(found, expected)


async def promtool_http_sd(
    promtool: Path, sd_config: dict[str, Any], tmp_path: Path
) -> tuple[e2e.Targets, str]:
    """promtool's http_sd of one sd config: (targets without `__meta_url`, its stderr)."""
    config = tmp_path / f"prometheus-{uuid.uuid4().hex[:8]}.yml"
    job = {"job_name": "oracle", "http_sd_configs": [sd_config]}
    config.write_text(json.dumps({"scrape_configs": [job]}))
    proc = await asyncio.create_subprocess_exec(
        promtool, "check", "service-discovery", config, "oracle",
        f"--timeout={e2e.PROMTOOL_TIMEOUT}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    found = Counter(oracle.comparable(t["discoveredLabels"]) for t in json.loads(out))
    without_url = Counter(
        frozenset((k, v) for k, v in target if k != "__meta_url") for target in found.elements()
    )
    return without_url, err.decode()


def seed(api: client.ApiClient, namespace: str) -> None:
    web = [objects.container("app", ("http", 8080, "TCP"), ("metrics", 9090, "TCP"))]
    for index in range(3):
        objects.create_pod(api, namespace, f"web-{index}", ip=f"10.244.9.{index + 1}",
                           node="node-a", labels={"app": "web"}, containers=web)  # fmt: skip


@pytest.fixture
def env(
    kafka_bootstrap: str, kubeconfig: Path, kube_api: client.ApiClient, promtool: Path
) -> e2e.Env:
    return e2e.Env(kafka_bootstrap, kubeconfig, kube_api, promtool)


async def test_promtool_discovers_the_same_targets_over_tls_with_each_credential(
    env: e2e.Env, namespace: str, topic_prefix: str, tmp_path: Path, pki: Pki
) -> None:
    kafka_bootstrap, kubeconfig, promtool = env.kafka_bootstrap, env.kubeconfig, env.promtool
    seed(env.kube_api, namespace)
    sd = {"role": "pod", "namespaces": {"names": [namespace]}}
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    web = web_dir(pki, tmp_path / "web", client_auth="RequireAndVerifyClientCert")
    settings = e2e.consumer_settings(
        bootstrap=kafka_bootstrap, prefix=topic_prefix, jobs={"pods": sd}, group=f"g-{topic_prefix}"
    ).model_copy(
        update={"http": HttpSettings(port=0, web_config_file=web, bearer_token_file=token)}
    )
    producer = e2e.RunningProducer(e2e.producer_settings(
        cluster="c1", bootstrap=kafka_bootstrap, prefix=topic_prefix, kubeconfig=kubeconfig,
        namespace=namespace,
    ))  # fmt: skip
    consumer = TlsConsumer(settings, client_tls(pki, cert="prometheus"))

    async with e2e.running(producer, consumer):
        expected = await e2e.kubernetes_sd(promtool, sd, kubeconfig=kubeconfig, tmp_path=tmp_path)
        assert sum(expected.values()) == 6  # 3 pods x 2 ports
        await consumer.converge("pods", expected)

        host, port = consumer.address
        tls = {"ca_file": str(pki.directory / "ca.crt"),
               "cert_file": str(pki.directory / "prometheus.crt"),
               "key_file": str(pki.directory / "prometheus.key")}  # fmt: skip
        base = {"url": f"https://{host}:{port}/http_sd/pods", "tls_config": tls}
        (tmp_path / "password").write_text(PASSWORD)
        runs = {
            "basic": promtool_http_sd(promtool, base | {"basic_auth": {
                "username": "prometheus", "password_file": str(tmp_path / "password")}}, tmp_path),
            "bearer": promtool_http_sd(promtool, base | {"authorization": {
                "credentials_file": str(token)}}, tmp_path),
            "wrong": promtool_http_sd(promtool, base | {"basic_auth": {
                "username": "prometheus", "password": "guess"}}, tmp_path),
            "no_cert": promtool_http_sd(promtool, base | {"tls_config": {
                "ca_file": tls["ca_file"]}, "authorization": {"credentials": TOKEN}}, tmp_path),
        }  # fmt: skip
        found = dict(zip(runs, await asyncio.gather(*runs.values()), strict=True))

        assert found["basic"][0] == expected, e2e.diff(found["basic"][0], expected)
        assert found["bearer"][0] == expected, e2e.diff(found["bearer"][0], expected)
        assert found["wrong"][0] == Counter(), found["wrong"]
        assert "401" in found["wrong"][1]
        assert found["no_cert"][0] == Counter(), found["no_cert"]
        assert "Unable to refresh target groups" in found["no_cert"][1]  # the handshake failed
        unauthenticated = await consumer.get("/metrics")
        assert (unauthenticated.status, unauthenticated.headers["www-authenticate"]) == (
            401, "Basic",
        )  # fmt: skip
        assert consumer.registry.get_sample_value(
            "sdstream_http_auth_refusals_total", {"reason": "bad_password"}
        )
        metrics = await consumer.get("/metrics", BEARER)
        assert metrics.status == 200
        for secret in (PASSWORD, TOKEN, HASHED):
            assert secret.encode() not in metrics.body


# --- the real server with the hooks from a web config file -------------------------------


@contextlib.asynccontextmanager
async def served(**http_settings: Any) -> AsyncIterator[tuple[tuple[str, int], CollectorRegistry]]:
    registry = CollectorRegistry()
    settings = HttpSettings(host="127.0.0.1", port=0, **http_settings)
    security = web_config.build(settings, registry=registry)
    server = http.HttpServer(settings, registry=registry, ready=lambda: None,
                             ssl_context=security.ssl_context, guard=security.guard)  # fmt: skip
    async with server:
        yield server.address, registry


def refusals(registry: CollectorRegistry, reason: str) -> float:
    value = registry.get_sample_value("sdstream_http_auth_refusals_total", {"reason": reason})
    return value or 0.0


async def test_only_good_credentials_get_answers_and_probes_stay_open(
    pki: Pki, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    web = web_dir(pki, tmp_path / "web")
    async with served(web_config_file=web, bearer_token_file=tmp_path / "token") as (at, registry):
        tls = client_tls(pki)
        wrong_basic = {"Authorization": BASIC["Authorization"][:-4] + "AAA="}
        answers = {
            "none": await fetch(at, path="/metrics", ssl=tls),
            "wrong basic": await fetch(at, path="/metrics", headers=wrong_basic, ssl=tls),
            "wrong token": await fetch(at, path="/metrics", headers=WRONG_TOKEN, ssl=tls),
            "basic": await fetch(at, path="/metrics", headers=BASIC, ssl=tls),
            "bearer": await fetch(at, path="/metrics", headers=BEARER, ssl=tls),
            "healthz": await fetch(at, path="/healthz", ssl=tls),
            "readyz": await fetch(at, path="/readyz", ssl=tls),
            "other": await fetch(at, path="/nothing-here", ssl=tls),
        }
        with pytest.raises((ConnectionError, IndexError, ValueError)):
            await fetch(at, path="/healthz")  # plain HTTP gets no HTTP answer

    statuses = {name: reply.status for name, reply in answers.items()}
    assert statuses == {"none": 401, "wrong basic": 401, "wrong token": 401, "basic": 200,
                        "bearer": 200, "healthz": 200, "readyz": 200, "other": 401}  # fmt: skip
    assert answers["none"].headers["www-authenticate"] == "Basic"
    assert (refusals(registry, "no_credentials"), refusals(registry, "bad_password"),
            refusals(registry, "bad_token")) == (2, 1, 1)  # fmt: skip
    assert b"sdstream_http_auth_refusals_total" in answers["basic"].body


async def test_closed_probes_need_credentials_too(pki: Pki, tmp_path: Path) -> None:
    web = web_dir(pki, tmp_path / "web")
    async with served(web_config_file=web, open_probes=False) as (at, _):
        tls = client_tls(pki)
        bare = [(await fetch(at, path=p, ssl=tls)).status for p in ("/healthz", "/readyz")]
        signed = [(await fetch(at, path=p, headers=BASIC, ssl=tls)).status
                  for p in ("/healthz", "/readyz")]  # fmt: skip
    assert (bare, signed) == ([401, 401], [200, 200])


async def test_required_client_certificates_are_verified(pki: Pki, tmp_path: Path) -> None:
    web = web_dir(pki, tmp_path / "web", client_auth="RequireAndVerifyClientCert", users=False)
    async with served(web_config_file=web) as (at, _):
        good = await fetch(at, path="/metrics", ssl=client_tls(pki, cert="prometheus"))
        for refused in (client_tls(pki), client_tls(pki, cert="intruder")):
            with pytest.raises((ssl.SSLError, ConnectionError, IndexError)):
                await fetch(at, path="/metrics", ssl=refused)
    assert good.status == 200


async def test_optional_client_certificates_are_verified_when_given(
    pki: Pki, tmp_path: Path
) -> None:
    web = web_dir(pki, tmp_path / "web", client_auth="VerifyClientCertIfGiven", users=False)
    async with served(web_config_file=web) as (at, _):
        without = await fetch(at, path="/healthz", ssl=client_tls(pki))
        good = await fetch(at, path="/healthz", ssl=client_tls(pki, cert="prometheus"))
        with pytest.raises((ssl.SSLError, ConnectionError, IndexError)):
            await fetch(at, path="/healthz", ssl=client_tls(pki, cert="intruder"))
    assert (without.status, good.status) == (200, 200)


async def served_by(at: tuple[str, int], trust: ssl.SSLContext) -> str:
    """The common name of the certificate a new connection is served."""
    _, writer = await asyncio.open_connection(*at, ssl=trust)
    subject = dict(pair[0] for pair in writer.get_extra_info("peercert")["subject"])
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
    return str(subject["commonName"])


async def test_new_connections_see_a_replaced_certificate(pki: Pki, tmp_path: Path) -> None:
    web = web_dir(pki, tmp_path / "web", users=False)
    async with served(web_config_file=web) as (at, registry):
        before = await served_by(at, client_tls(pki))
        for name in ("server.crt", "server.key"):  # as a secret mount does: new files
            staged = web.parent / f"{name}.new"
            shutil.copy(pki.directory / name.replace("server", "server2"), staged)
            staged.replace(web.parent / name)
        after = await served_by(at, client_tls(pki, trust="ca2"))
        with pytest.raises(ssl.SSLCertVerificationError):
            await served_by(at, client_tls(pki))
        answer = await fetch(at, path="/healthz", ssl=client_tls(pki, trust="ca2"))
    assert (before, after, answer.status) == ("server", "server2", 200)
    assert registry.get_sample_value("sdstream_http_tls_reloads_total", {"result": "ok"}) == 1


async def test_the_producer_command_serves_tls_and_asks_for_credentials(
    env: e2e.Env, namespace: str, topic_prefix: str, tmp_path: Path, pki: Pki
) -> None:
    """`sdstream produce --web.config.file`, the real command: its /metrics needs the
    password over TLS, its probes answer without one, SIGTERM still ends it with 0."""
    web = web_dir(pki, tmp_path / "web")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    variables = {k: v for k, v in os.environ.items() if not k.startswith("SDSTREAM_")}
    variables |= {"SDSTREAM_NAMESPACES": namespace, "SDSTREAM_RESOURCES": "pods",
                  "SDSTREAM_PARTITIONS": "2"}  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        Path(sys.executable).with_name("sdstream"), "produce", "--cluster", "c1",
        "--kubeconfig", str(env.kubeconfig), "--bootstrap", env.kafka_bootstrap,
        "--topic-prefix", topic_prefix, "--http-port", str(port), "--web.config.file", str(web),
        env=variables, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    at, tls = ("127.0.0.1", port), client_tls(pki)
    try:
        async with asyncio.timeout(60):
            while True:
                with contextlib.suppress(OSError, IndexError):
                    if (await fetch(at, path="/readyz", ssl=tls)).status == 200:
                        break
                assert process.returncode is None
                await asyncio.sleep(0.1)
        bare = await fetch(at, path="/metrics", ssl=tls)
        signed = await fetch(at, path="/metrics", headers=BASIC, ssl=tls)
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert (bare.status, signed.status) == (401, 200)
    assert b"sdstream_producer_" in signed.body
    assert process.returncode == 0, stderr.decode()[-2000:]
    assert "Serving HTTPS" in stderr.decode()
    assert PASSWORD not in stderr.decode()
