"""Monitor endpoint -> scrape parameters: equal to prometheus-operator's golden jobs (all
but the SD section and relabel rules), secrets as files under `secrets_dir`, and hostile
values refused per monitor. The live operator compares the rest
(tests/integration/test_monitors_vs_operator.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.monitors import jobs, scrape, select
from schemas.monitors import MonitorsSettings
from schemas.topics import Resource

FIXTURES = Path(__file__).parents[3] / "fixtures" / "monitors"
CASES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "cases.yaml").read_text())
SD_KEYS = ("job_name", "kubernetes_sd_configs", "relabel_configs")
DIR = "/etc/prometheus/certs"
SM = Resource.SERVICEMONITORS
PM = Resource.PODMONITORS


def _monitor(*endpoints: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "team"}, "spec": {**spec,
            "endpoints": list(endpoints)}}  # fmt: skip


def _params(endpoint: dict[str, Any], **spec: Any) -> dict[str, Any]:
    (found,) = scrape.parameters(SM, _monitor(endpoint, **spec), secrets_dir=DIR)
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda case: case["golden"])
def test_parameters_are_the_operator_s(case: dict[str, Any]) -> None:
    config = yaml.safe_load((FIXTURES / case["golden"]).read_text())
    theirs = [
        {k: v for k, v in job.items() if k not in SD_KEYS} for job in config["scrape_configs"]
    ]
    assert scrape.parameters(jobs.KINDS[case["kind"]], case, secrets_dir=DIR) == theirs


def test_scrape_settings_are_copied_in_the_operator_s_words() -> None:
    found = _params(
        {"port": "web", "interval": "15s", "scrapeTimeout": "10s", "path": "/m",
         "params": {"module": ["a", "b"]}, "scheme": "HTTPS", "honorLabels": True,
         "honorTimestamps": False, "followRedirects": False, "enableHttp2": True,
         "metricRelabelings": [{"action": "Drop", "sourceLabels": ["__name__"], "regex": "go_.*"}]},
        sampleLimit=100, scrapeProtocols=["PrometheusProto"], bodySizeLimit="10MB",
    )  # fmt: skip
    assert found == {
        "honor_labels": True, "honor_timestamps": False, "scrape_interval": "15s",
        "scrape_timeout": "10s", "metrics_path": "/m", "params": {"module": ["a", "b"]},
        "scheme": "https", "follow_redirects": False, "enable_http2": True, "sample_limit": 100,
        "scrape_protocols": ["PrometheusProto"], "body_size_limit": "10MB",
        "metric_relabel_configs": [
            {"source_labels": ["__name__"], "regex": "go_.*", "action": "drop"}],
    }  # fmt: skip


def test_secrets_are_files_named_as_the_operator_names_tls_assets() -> None:
    ref = {"name": "creds", "key": "token"}
    found = _params({
        "tlsConfig": {"ca": {"configMap": {"name": "ca", "key": "ca.crt"}},
                      "cert": {"secret": {"name": "tls", "key": "tls.crt"}},
                      "keySecret": {"name": "tls", "key": "tls.key"}, "serverName": "web"},
        "basicAuth": {"username": {"name": "basic", "key": "user"},
                      "password": {"name": "basic", "key": "pass"}},
        "authorization": {"type": "Token", "credentials": ref},
    })  # fmt: skip
    assert found["tls_config"] == {
        "ca_file": f"{DIR}/1_team_ca_ca.crt",
        "cert_file": f"{DIR}/0_team_tls_tls.crt",
        "key_file": f"{DIR}/0_team_tls_tls.key",
        "server_name": "web",
    }
    assert found["basic_auth"] == {"username_file": f"{DIR}/0_team_basic_user",
                                   "password_file": f"{DIR}/0_team_basic_pass"}  # fmt: skip
    assert found["authorization"] == {
        "type": "Token",
        "credentials_file": f"{DIR}/0_team_creds_token",
    }
    bearer = _params({"bearerTokenSecret": ref})
    assert bearer["bearer_token_file"] == f"{DIR}/0_team_creds_token"
    assert "bearer_token_file" not in _params({"bearerTokenSecret": {"name": "", "key": "k"}})


def test_a_pod_monitor_has_no_tls_files() -> None:
    monitor = {"metadata": {"name": "p", "namespace": "team"}, "spec": {"podMetricsEndpoints": [
        {"tlsConfig": {"caFile": "/etc/passwd", "insecureSkipVerify": True}}]}}  # fmt: skip
    (found,) = scrape.parameters(PM, monitor, secrets_dir=DIR)
    assert found["tls_config"] == {"insecure_skip_verify": True}


@pytest.mark.parametrize(
    ("tls", "problem"),
    [
        ({"cert": {"secret": {"name": "a", "key": "c"}}},
         "client cert specified without client key"),
        ({"keySecret": {"name": "a", "key": "k"}}, "client key specified without client cert"),
        ({"minVersion": "TLS13", "maxVersion": "TLS12"},
         "maxVersion must more than or equal to minVersion"),
        ({"ca": {"secret": {"name": "s", "key": "k"}, "configMap": {"name": "m", "key": "k"}}},
         "ca <secret=s,key=k>: cannot specify both Secret and ConfigMap"),
    ],
)  # fmt: skip
def test_a_pod_monitor_s_tls_is_checked_as_the_operator_checks_safe_tls(
    tls: dict[str, Any], problem: str
) -> None:
    """SafeTLSConfig.Validate: its own words; file fields mean nothing here (ignored)."""
    monitor = {"metadata": {"name": "p", "namespace": "team"},
               "spec": {"podMetricsEndpoints": [{"tlsConfig": tls}]}}  # fmt: skip
    with pytest.raises(jobs.MonitorError, match="podMetricsEndpoints\\[0\\]") as caught:
        scrape.parameters(PM, monitor, secrets_dir=DIR)
    assert problem in str(caught.value)
    files_only = {"podMetricsEndpoints": [{"tlsConfig": {"certFile": "/c", "caFile": "/a"}}]}
    assert scrape.parameters(PM, {**monitor, "spec": files_only}, secrets_dir=DIR)


@pytest.mark.parametrize(
    ("endpoint", "spec", "problem"),
    [
        ({"bearerTokenSecret": {"name": "../../etc", "key": "passwd"}}, {}, "name '../../etc'"),
        ({"bearerTokenSecret": {"name": "a", "key": ".."}}, {}, "key '..'"),
        ({"basicAuth": {"username": {"name": "a", "key": "u/v"}}}, {}, "key 'u/v'"),
        ({"basicAuth": {"username": {"name": "a", "key": "u"}}}, {}, "basicAuth.password"),
        ({"oauth2": {"tokenUrl": "https://x"}}, {}, "oauth2"),
        ({"interval": "10s", "scrapeTimeout": "20s"}, {}, "greater than the interval"),
        ({"scrapeTimeout": "31s"}, {}, "greater than the interval"),
        ({"interval": "soon"}, {}, "not a valid duration"),
        ({"scheme": "ftp"}, {}, "neither http nor https"),
        ({"params": {"a": "b"}}, {}, "not a list of strings"),
        ({"honorLabels": "yes"}, {}, "not a boolean"),
        ({"authorization": {"type": "Basic"}}, {}, "authorization.type"),
        ({"authorization": {"type": "a b"}}, {}, "authorization.type"),
        ({"tlsConfig": {"minVersion": "SSL3"}}, {}, "minVersion"),
        # The operator's TLSConfig.Validate (tls_types.go), in its words.
        ({"tlsConfig": {"certFile": "/c"}}, {}, "cannot specify client cert without client key"),
        (
            {"tlsConfig": {"keySecret": {"name": "a", "key": "k"}}},
            {},
            "cannot specify client key without client cert",
        ),
        (
            {"tlsConfig": {"caFile": "/ca", "ca": {"secret": {"name": "a", "key": "c"}}}},
            {},
            "cannot specify both 'caFile' and 'ca'",
        ),
        (
            {
                "tlsConfig": {
                    "certFile": "/c",
                    "keyFile": "/k",
                    "cert": {"configMap": {"name": "a", "key": "c"}},
                }
            },
            {},
            "cannot specify both 'certFile' and 'cert'",
        ),
        (
            {
                "tlsConfig": {
                    "certFile": "/c",
                    "keyFile": "/k",
                    "keySecret": {"name": "a", "key": "k"},
                }
            },
            {},
            "cannot specify both 'keyFile' and 'keySecret'",
        ),
        (
            {
                "tlsConfig": {
                    "ca": {
                        "secret": {"name": "a", "key": "c"},
                        "configMap": {"name": "a", "key": "c"},
                    }
                }
            },
            {},
            "ca: cannot specify both Secret and ConfigMap",
        ),
        (  # the operator's order: the file conflict before the reference's own check
            {
                "tlsConfig": {
                    "caFile": "/ca",
                    "ca": {
                        "secret": {"name": "a", "key": "c"},
                        "configMap": {"name": "a", "key": "c"},
                    },
                }
            },
            {},
            "tlsConfig: cannot specify both 'caFile' and 'ca'",
        ),
        (
            {"tlsConfig": {"minVersion": "TLS13", "maxVersion": "TLS12"}},
            {},
            "'maxVersion' must greater than or equal to 'minVersion'",
        ),
        (
            {"metricRelabelings": [{"action": "hashmod", "targetLabel": "x"}]},
            {},
            "metricRelabelings[0]",
        ),
        ({}, {"sampleLimit": -1}, "sampleLimit"),
        ({}, {"sampleLimit": True}, "sampleLimit"),
        ({}, {"scrapeProtocols": ["Gopher"]}, "scrapeProtocols"),
        ({}, {"bodySizeLimit": "lots"}, "bodySizeLimit"),
        ({"params": {"q": ["x" * 70_000]}}, {}, "more than 65536"),
    ],
)
def test_what_cannot_be_written_faithfully_rejects_the_monitor(
    endpoint: dict[str, Any], spec: dict[str, Any], problem: str
) -> None:
    with pytest.raises(jobs.MonitorError, match="endpoints\\[0\\]") as caught:
        scrape.parameters(SM, _monitor(endpoint, **spec), secrets_dir=DIR)
    assert problem in str(caught.value)


def test_a_rejected_monitor_makes_no_job_and_is_reported() -> None:
    settings = MonitorsSettings(service_monitor_selector={}, namespace="team")  # type: ignore[arg-type]
    bad = _monitor({"port": "web", "bearerTokenSecret": {"name": "A_B", "key": "k"}})
    found, rejected = select.all_jobs(settings, [("c1", SM, bad)], lambda c, n: {})
    assert found == {}
    assert [r.key for r in rejected] == ["team/web"]


def test_monitor_jobs_carry_their_scrape_parameters() -> None:
    settings = MonitorsSettings(scrape_configs={"secrets_dir": "/s"})  # type: ignore[arg-type]
    monitor = _monitor(
        {"port": "web", "interval": "5s", "bearerTokenSecret": {"name": "t", "key": "k"}}
    )
    (job,) = select.monitor_jobs(settings, "c1", SM, monitor)
    assert dict(job.scrape) == {"honor_labels": False, "scrape_interval": "5s",
                                "bearer_token_file": "/s/0_team_t_k"}  # fmt: skip
    with pytest.raises(TypeError):
        job.scrape["scheme"] = "https"  # type: ignore[index]
