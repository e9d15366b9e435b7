"""Set-up mistakes end the real `sdstream produce`/`consume` in one line on stderr naming
the setting or file, exit status 2: no traceback, nothing started first.

Each case is what a user types; `{kubeconfig}`, `{tmp}` and `{busy}` (a port something
already listens on) are filled in per run.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import cli

API = {"SDSTREAM_KUBE_API_SERVER": "https://127.0.0.1:9"}  # never reached: fails before
# A serve-only consumer without jobs warns that it serves nothing; these cases have one
# (values go through str.format, hence the doubled braces).
ONE_JOB = {"SDSTREAM_SCRAPE_CONFIGS":
           '[{{"job_name": "pods", "kubernetes_sd_configs": [{{"role": "pod"}}]}}]'}  # fmt: skip
CASES: dict[str, tuple[list[str], dict[str, str], list[str]]] = {
    "yaml syntax": (["produce", "--config", "{tmp}/bad.yml"], {},
                    ["{tmp}/bad.yml", "invalid YAML at line 3"]),
    "yaml list": (["consume", "--config", "{tmp}/list.yml"], {},
                  ["{tmp}/list.yml", "expected a mapping"]),
    "config is a directory": (["consume", "--config", "{tmp}"], {}, ["{tmp} is a directory"]),
    "resources not a list": (["produce", "--cluster", "c"], {"SDSTREAM_RESOURCES": "[pods"},
                             ["SDSTREAM_RESOURCES", "a,b,c"]),
    "missing kubeconfig": (["produce", "--cluster", "c", "--kubeconfig", "{tmp}/nope"], {},
                           ["kube.kubeconfig", "{tmp}/nope"]),
    "unknown context": (["produce", "--cluster", "c", "--kubeconfig", "{kubeconfig}",
                         "--context", "nope"], {}, ["kube.context nope"]),
    "missing token file": (["produce", "--cluster", "c"],
                           API | {"SDSTREAM_KUBE_TOKEN_FILE": "{tmp}/token"},
                           ["kube.token_file", "{tmp}/token"]),
    "missing CA file": (["produce", "--cluster", "c"], API | {"SDSTREAM_KUBE_CA_FILE": "{tmp}/ca"},
                        ["kube.ca_file", "{tmp}/ca"]),
    "CA file not PEM": (["produce", "--cluster", "c"],
                        API | {"SDSTREAM_KUBE_CA_FILE": "{tmp}/list.yml"},
                        ["kube.ca_file", "{tmp}/list.yml"]),
    "Kafka CA file": (["consume", "--mode", "serve"],
                      {"SDSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
                       "SDSTREAM_KAFKA_SSL_CAFILE": "{tmp}/ca"}, ["kafka.ssl_cafile"]),
    "SASL credentials over PLAINTEXT": (["consume", "--mode", "serve"],
                                        {"SDSTREAM_KAFKA_SASL_USERNAME": "u",
                                         "SDSTREAM_KAFKA_SASL_PASSWORD": "p"},
                                        ["kafka: sasl_username, sasl_password", "PLAINTEXT"]),
    "SASL_SSL without mechanism": (["consume", "--mode", "serve"],
                                   {"SDSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                                    "SDSTREAM_KAFKA_SASL_USERNAME": "u",
                                    "SDSTREAM_KAFKA_SASL_PASSWORD": "p"},
                                   ["SASL_SSL needs sasl_mechanism"]),
    "Kafka password file": (["consume", "--mode", "serve"],
                            {"SDSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                             "SDSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
                             "SDSTREAM_KAFKA_SASL_USERNAME": "u",
                             "SDSTREAM_KAFKA_SASL_PASSWORD_FILE": "{tmp}/pw"},
                            ["kafka.sasl_password_file", "{tmp}/pw"]),
    "Kafka client certificate": (["consume", "--mode", "serve"],
                                 {"SDSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
                                  "SDSTREAM_KAFKA_SSL_CERTFILE": "{tmp}/list.yml",
                                  "SDSTREAM_KAFKA_SSL_KEYFILE": "{tmp}/bad.yml"},
                                 ["kafka.ssl_certfile, kafka.ssl_keyfile", "{tmp}/list.yml"]),
    "unresolvable http.host": (["consume", "--mode", "serve"],
                               {"SDSTREAM_HTTP_HOST": "no-such-host.invalid", **ONE_JOB},
                               ["http.host", "no-such-host.invalid"]),
    "consumer port in use": (["consume", "--mode", "serve", "--http-port", "{busy}"], ONE_JOB,
                             ["http.port", "{busy}", "address already in use"]),
    "producer port in use": (["produce", "--cluster", "c", "--kubeconfig", "{kubeconfig}",
                              "--http-port", "{busy}"], {}, ["http.port", "{busy}"]),
    "missing web config file": (["consume", "--mode", "serve", "--web.config.file",
                                 "{tmp}/nope.yml"], ONE_JOB,
                                ["web config file {tmp}/nope.yml does not exist"]),
    "web config half a TLS pair": (["consume", "--mode", "serve", "--web.config.file",
                                    "{tmp}/half.yml"], ONE_JOB,
                                   ["web config file {tmp}/half.yml", "missing key_file"]),
    "web config plain password": (["produce", "--cluster", "c", "--kubeconfig", "{kubeconfig}",
                                   "--web.config.file", "{tmp}/plain.yml"], {},
                                  ["{tmp}/plain.yml", "basic_auth_users.prom", "not a bcrypt"]),
    "web config certificate": (["produce", "--cluster", "c", "--kubeconfig", "{kubeconfig}"],
                               {"SDSTREAM_HTTP_WEB_CONFIG_FILE": "{tmp}/notpem.yml"},
                               ["tls_server_config.cert_file", "{tmp}/list.yml"]),
    "missing bearer token file": (["consume", "--mode", "serve"],
                                  {"SDSTREAM_HTTP_BEARER_TOKEN_FILE": "{tmp}/token", **ONE_JOB},
                                  ["http.bearer_token_file", "{tmp}/token"]),
}  # fmt: skip


@pytest.fixture
def busy() -> Iterator[int]:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield int(listening.getsockname()[1])


@pytest.mark.parametrize("case", list(CASES))
async def test_a_set_up_mistake_is_one_line_and_exit_2(
    case: str, tmp_path: Path, kubeconfig: Path, busy: int
) -> None:
    (tmp_path / "bad.yml").write_text("cluster: a\nkafka: [\n")
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    (tmp_path / "half.yml").write_text("tls_server_config: {cert_file: a.crt}\n")
    (tmp_path / "plain.yml").write_text("basic_auth_users: {prom: hunter2}\n")
    (tmp_path / "notpem.yml").write_text(
        "tls_server_config: {cert_file: list.yml, key_file: bad.yml}\n"
    )
    values = {"tmp": str(tmp_path), "kubeconfig": str(kubeconfig), "busy": str(busy)}
    args, env, expected = CASES[case]

    finished = await cli.run(
        *[a.format(**values) for a in args],
        env={k: v.format(**values) for k, v in env.items()} | {"HOME": str(tmp_path)},
    )

    assert "Traceback" not in finished.stderr, finished.stderr
    assert finished.code == 2, finished.stderr
    (line,) = finished.lines
    for part in expected:
        assert part.format(**values) in line
    assert "hunter2" not in finished.stderr


async def test_comma_separated_resources_are_accepted(tmp_path: Path) -> None:
    """Not a mistake: `SDSTREAM_RESOURCES=pods,services` gets as far as Kubernetes access."""
    finished = await cli.run(
        "produce", "--cluster", "c", "--kubeconfig", str(tmp_path / "nope"),
        env={"SDSTREAM_RESOURCES": "pods,services"},
    )  # fmt: skip

    assert finished.code == 2
    assert "kube.kubeconfig" in finished.stderr
