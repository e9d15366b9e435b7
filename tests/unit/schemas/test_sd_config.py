"""The job-config contract against Prometheus's config loading.

Expected errors are Prometheus's (discovery/kubernetes/kubernetes.go SDConfig.UnmarshalYAML,
prometheus/common HTTPClientConfig.Validate, config/config.go) or sdstream's documented
rules (schemas/sd_config.py docstring). Every error is checked for the path pydantic
reports (`loc`) and for a message naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.config import ConsumerSettings
from schemas.sd_config import (
    IGNORED_SCRAPE_KEYS,
    KubernetesSDConfig,
    Role,
    ScrapeJob,
    SelectorConfig,
)
from schemas.topics import Resource

SD = ("scrape_configs", 0, "kubernetes_sd_configs", 0)


# Jobs are validated as the consumer loads them: the `scrape_configs` of ConsumerSettings.
def jobs_file(*sd_configs: dict[str, Any], **job: Any) -> dict[str, Any]:
    return {
        "scrape_configs": [
            {"job_name": "k8s", "kubernetes_sd_configs": list(sd_configs) or [{"role": "pod"}]}
            | job
        ]
    }


def error_of(data: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        ConsumerSettings.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"]


# --- accepted ----------------------------------------------------------------------------


def test_minimal_job_per_role() -> None:
    for role in Role:
        config = ConsumerSettings.model_validate(jobs_file({"role": role.value}))
        sd = config.scrape_configs[0].kubernetes_sd_configs[0]
        assert sd.role is role
        assert (
            sd.role.resource
            is {
                "node": Resource.NODES,
                "service": Resource.SERVICES,
                "pod": Resource.PODS,
                "endpoints": Resource.ENDPOINTS,
                "endpointslice": Resource.ENDPOINTSLICES,
                "ingress": Resource.INGRESSES,
            }[role.value]
        )
        assert (sd.namespaces.names, sd.namespaces.own_namespace, sd.selectors) == ((), False, ())


def test_defaults() -> None:
    job = ConsumerSettings.model_validate(jobs_file()).scrape_configs[0]
    assert (job.clusters, job.cluster_label, job.ignored_keys) == (None, "cluster", ())
    assert job.reads_cluster("anything")
    assert ConsumerSettings.model_validate({}).scrape_configs == ()


# A typical pasted job (Prometheus's kubernetes example config, trimmed).
PASTED: dict[str, Any] = {
    "job_name": "kubernetes-pods",
    "scrape_interval": "30s",
    "scheme": "https",
    "tls_config": {"insecure_skip_verify": True},
    "authorization": {"credentials_file": "/var/run/secrets/token"},
    "honor_labels": True,
    "static_configs": [{"targets": ["localhost:9090"]}],
    "file_sd_configs": [{"files": ["x.json"]}],
    "relabel_configs": [
        {
            "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            "action": "keep",
            "regex": "true",
        }
    ],
    "metric_relabel_configs": [],
    "kubernetes_sd_configs": [
        {
            "role": "pod",
            "namespaces": {"names": ["shop", "kube-system"]},
            "selectors": [
                {"role": "pod", "label": "app in (web,api)", "field": "status.phase=Running"},
                {"role": "node", "label": "!node-role.kubernetes.io/control-plane"},
            ],
            "attach_metadata": {"node": True, "namespace": True, "deployment": True},
        }
    ],
}


def test_pasted_prometheus_job_is_accepted_and_extras_listed() -> None:
    job = ScrapeJob.model_validate(PASTED)
    assert job.job_name == "kubernetes-pods"
    # scrape_interval and scheme feed the scrape defaults relabeling reads: not ignored.
    assert job.scrape_defaults()["__scheme__"] == PASTED["scheme"]
    assert job.scrape_defaults()["__scrape_interval__"] == PASTED["scrape_interval"]
    assert set(job.ignored_keys) == {
        "tls_config",
        "authorization",
        "honor_labels",
        "static_configs",
        "file_sd_configs",
        "metric_relabel_configs",
    }
    assert job.relabel_configs[0].action == "keep"
    sd = job.kubernetes_sd_configs[0]
    assert sd.namespaces.names == ("shop", "kube-system")
    pod_selector = sd.selector(Role.POD)
    assert pod_selector is not None
    assert str(pod_selector.label_selector()) == "app in (api,web)"
    assert str(pod_selector.field_selector()) == "status.phase=Running"
    assert sd.selector(Role.SERVICE) is None
    assert sd.watching_fields == ()


@pytest.mark.parametrize("key", sorted(IGNORED_SCRAPE_KEYS))
def test_every_prometheus_scrape_key_is_accepted(key: str) -> None:
    job = ScrapeJob.model_validate({**PASTED, key: None})
    assert key in job.ignored_keys


def test_prometheus_lists_for_ignored_keys_match_the_source() -> None:
    # config/config.go ScrapeConfig (29 keys besides job_name, less relabel_configs which
    # sdstream applies, the 8 feeding the scrape defaults and keep_dropped_targets, which
    # the discovery page honours), prometheus/common's inlined HTTPClientConfig (13) and
    # the 36 registered discovery configs but kubernetes
    assert len(IGNORED_SCRAPE_KEYS) == 28 - 8 - 1 + 13 + 36
    assert "keep_dropped_targets" not in IGNORED_SCRAPE_KEYS
    assert not {"kubernetes_sd_configs", "relabel_configs"} & IGNORED_SCRAPE_KEYS
    assert {"static_configs", "http_sd_configs", "bearer_token"} <= (IGNORED_SCRAPE_KEYS)


JOB: dict[str, Any] = {"job_name": "j", "kubernetes_sd_configs": [{"role": "pod"}]}
SCRAPE_DEFAULT_KEYS = ["scheme", "metrics_path", "scrape_interval", "scrape_timeout", "params",
                       "scrape_native_histograms", "always_scrape_classic_histograms",
                       "convert_classic_histograms_to_nhcb"]  # fmt: skip


@pytest.mark.parametrize("key", SCRAPE_DEFAULT_KEYS)
def test_a_null_scrape_default_key_reads_as_prometheus_default(key: str) -> None:
    job = ScrapeJob.model_validate({**JOB, key: None})
    assert job.scrape_defaults() == {
        "job": "j", "__scrape_interval__": "1m", "__scrape_timeout__": "10s",
        "__metrics_path__": "/metrics", "__scheme__": "http",
        "__convert_classic_histograms_to_nhcb__": "false",
        "__always_scrape_classic_histograms__": "false", "__scrape_native_histograms__": "false",
    }  # fmt: skip


def test_scrape_defaults_follow_prometheus() -> None:
    job = ScrapeJob.model_validate({
        "job_name": "j", "kubernetes_sd_configs": [{"role": "pod"}], "scrape_interval": "90s",
        "params": {"module": ["m1", "m2"], "none": []}, "scheme": "https",
        "metrics_path": "/m", "scrape_native_histograms": True,
    })  # fmt: skip
    defaults = job.scrape_defaults()
    assert defaults["__scrape_interval__"] == "1m30s"
    assert defaults["__scrape_timeout__"] == "10s"
    assert defaults["__param_module"] == "m1"
    assert "__param_none" not in defaults
    assert (defaults["__scheme__"], defaults["__metrics_path__"]) == ("https", "/m")
    assert defaults["__scrape_native_histograms__"] == "true"
    short = ScrapeJob.model_validate({**JOB, "scrape_interval": "5s"})
    assert short.scrape_defaults()["__scrape_timeout__"] == "5s"


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"scrape_interval": "5s", "scrape_timeout": "6s"}, "scrape timeout greater"),
     ({"scrape_interval": "5 s"}, "not a valid duration"),
     ({"scrape_timeout": ""}, "not a valid duration")],
)  # fmt: skip
def test_bad_scrape_durations_are_refused(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScrapeJob.model_validate({**JOB, **extra})


def test_null_lists_read_as_empty() -> None:
    sd = {"role": "pod", "namespaces": {"names": None}, "selectors": None}
    config = ConsumerSettings.model_validate(jobs_file(sd))
    parsed = config.scrape_configs[0].kubernetes_sd_configs[0]
    assert (parsed.namespaces.names, parsed.selectors) == ((), ())
    selector = SelectorConfig.model_validate({"role": "pod", "label": None, "field": None})
    assert (selector.label, selector.field) == ("", "")


ALLOWED_SELECTORS = [
    ("pod", ["pod", "node"]),
    ("service", ["service"]),
    ("endpoints", ["pod", "service", "endpoints"]),
    ("endpointslice", ["pod", "service", "endpointslice"]),
    ("node", ["node"]),
    ("ingress", ["ingress"]),
]


@pytest.mark.parametrize(("role", "selector_roles"), ALLOWED_SELECTORS)
def test_allowed_selector_roles(role: str, selector_roles: list[str]) -> None:
    sd = {"role": role, "selectors": [{"role": r, "label": "a=b"} for r in selector_roles]}
    parsed = ConsumerSettings.model_validate(jobs_file(sd))
    assert [s.role for s in parsed.scrape_configs[0].kubernetes_sd_configs[0].selectors] == (
        selector_roles
    )


def test_watch_settings_are_accepted_and_listed() -> None:
    sd = KubernetesSDConfig.model_validate(
        {
            "role": "endpoints",
            "api_server": "https://k8s.example:6443",
            "basic_auth": {"username": "u", "password": "hunter2"},
            "tls_config": {"ca_file": "/ca.pem"},
            "follow_redirects": False,
            "proxy_url": "http://proxy:3128",
            "no_proxy": "10.0.0.0/8",
        }
    )
    assert sd.watching_fields == (
        "api_server",
        "basic_auth",
        "tls_config",
        "follow_redirects",
        "proxy_url",
        "no_proxy",
    )
    assert "hunter2" not in repr(sd)


def test_default_http_settings_need_no_api_server() -> None:
    # Go compares with DefaultHTTPClientConfig: follow_redirects and enable_http2 true,
    # an all-zero tls_config, are the defaults.
    sd = KubernetesSDConfig.model_validate(
        {
            "role": "pod",
            "follow_redirects": True,
            "enable_http2": True,
            "tls_config": {"insecure_skip_verify": False},
            "proxy_from_environment": False,
        }
    )
    assert sd.custom_http_fields == ()
    assert sd.watching_fields == (
        "tls_config",
        "follow_redirects",
        "enable_http2",
        "proxy_from_environment",
    )


def test_kubeconfig_alone_is_fine() -> None:
    sd = KubernetesSDConfig.model_validate({"role": "node", "kubeconfig_file": "kube.yml"})
    assert sd.watching_fields == ("kubeconfig_file",)


@pytest.mark.parametrize(
    "name", ["k8s", "kubernetes-pods", "a.b:c_d-e", "_x", "9", "J" * 128, "serviceMonitor_ns_x_0"]
)
def test_job_names_accepted(name: str) -> None:
    assert ScrapeJob.model_validate({**PASTED, "job_name": name}).job_name == name


def test_clusters_and_cluster_label() -> None:
    job = ScrapeJob.model_validate(
        {**PASTED, "clusters": ["prod-eu", "prod-us"], "cluster_label": "__meta_cluster"}
    )
    assert job.clusters == ("prod-eu", "prod-us")
    assert job.reads_cluster("prod-eu")
    assert not job.reads_cluster("dev")
    assert job.cluster_label == "__meta_cluster"


# --- rejected: each error names its path -------------------------------------------------

CONFIG_ERRORS = [
    # unknown keys, as Prometheus's strict YAML
    (jobs_file(foo=1), ("scrape_configs", 0, "foo"), "Extra inputs"),
    (jobs_file({"role": "pod", "preferred_node_address_types": []}),
     (*SD, "preferred_node_address_types"), "Extra inputs"),
    (jobs_file({"role": "pod", "namespaces": {"name": ["a"]}}),
     (*SD, "namespaces", "name"), "Extra inputs"),
    (jobs_file({"role": "pod", "selectors": [{"role": "pod", "labels": "a"}]}),
     (*SD, "selectors", 0, "labels"), "Extra inputs"),
    (jobs_file({"role": "pod", "attach_metadata": {"nodes": True}}),
     (*SD, "attach_metadata", "nodes"), "Extra inputs"),
    ({"global": {}, "scrape_configs": []}, ("global",), "Extra inputs"),
    # roles
    (jobs_file({"role": "pods"}), (*SD, "role"), "'node', 'service', 'pod'"),
    (jobs_file({"namespaces": {}}), (*SD, "role"), "Field required"),
    (jobs_file({"role": "pod", "selectors": [{"role": "deployment"}]}),
     (*SD, "selectors", 0, "role"), "'node', 'service', 'pod'"),
    (jobs_file({"role": "pod", "selectors": [{"label": "a"}]}),
     (*SD, "selectors", 0, "role"), "Field required"),
    # selector roles: allowed per role, no repeats (Prometheus's messages)
    (jobs_file({"role": "service", "selectors": [{"role": "pod"}]}),
     (*SD, "selectors"), "service role supports only service selectors"),
    (jobs_file({"role": "pod", "selectors": [{"role": "service"}]}),
     (*SD, "selectors"), "pod role supports only pod, node selectors"),
    (jobs_file({"role": "endpointslice", "selectors": [{"role": "endpoints"}]}),
     (*SD, "selectors"), "endpointslice role supports only pod, service, endpointslice selectors"),
    (jobs_file({"role": "endpoints", "selectors": [{"role": "node"}]}),
     (*SD, "selectors"), "endpoints role supports only pod, service, endpoints selectors"),
    (jobs_file({"role": "node", "selectors": [{"role": "pod"}]}),
     (*SD, "selectors"), "node role supports only node selectors"),
    (jobs_file({"role": "ingress", "selectors": [{"role": "service"}]}),
     (*SD, "selectors"), "ingress role supports only ingress selectors"),
    (jobs_file({"role": "pod", "selectors": [{"role": "pod"}, {"role": "node"}, {"role": "pod"}]}),
     (*SD, "selectors"), "selectors[2]: duplicated selector role: pod"),
    # selectors parsed at load
    (jobs_file({"role": "pod", "selectors": [{"role": "pod", "label": "app in web"}]}),
     (*SD, "selectors", 0, "label"), "found 'web', expected '(' at position 7"),
    (jobs_file({"role": "pod", "selectors": [{"role": "pod", "label": "Foo/bar=x"}]}),
     (*SD, "selectors", 0, "label"), "invalid label key 'Foo/bar'"),
    (jobs_file({"role": "pod", "selectors": [{"role": "node", "field": "spec.nodeName=a"}]}),
     (*SD, "selectors", 0, "field"), "field 'spec.nodeName' is not selectable on nodes"),
    (jobs_file({"role": "endpoints", "selectors": [{"role": "service", "field": "spec.ports=1"}]}),
     (*SD, "selectors", 0, "field"), "field 'spec.ports' is not selectable on services"),
    (jobs_file({"role": "pod", "selectors": [{"role": "pod", "field": "status.phase"}]}),
     (*SD, "selectors", 0, "field"), "'status.phase' is not field=value"),
    # namespaces
    (jobs_file({"role": "pod", "namespaces": {"names": ["shop", "Kube_System"]}}),
     (*SD, "namespaces", "names", 1), "namespace 'Kube_System' is not a namespace name"),
    (jobs_file({"role": "pod", "namespaces": {"names": [""]}}),
     (*SD, "namespaces", "names", 0), "omit `names` to watch all namespaces"),
    # how the API server is reached (Prometheus's messages)
    (jobs_file({"role": "pod", "api_server": "https://a", "kubeconfig_file": "k"}),
     SD, "cannot use 'kubeconfig_file' and 'api_server' simultaneously"),
    (jobs_file({"role": "pod", "kubeconfig_file": "k", "tls_config": {"ca_file": "x"}}),
     SD, "cannot use a custom HTTP client configuration together with 'kubeconfig_file'"),
    (jobs_file({"role": "pod", "basic_auth": {"username": "u"}}),
     SD, "please provide the 'api_server' URL explicitly (set: basic_auth)"),
    (jobs_file({"role": "pod", "follow_redirects": False}),
     SD, "please provide the 'api_server' URL explicitly (set: follow_redirects)"),
    (jobs_file({"role": "pod", "bearer_token_file": "/t"}),
     SD, "please provide the 'api_server' URL explicitly (set: bearer_token_file)"),
    (jobs_file({"role": "pod", "api_server": "https://a", "namespaces": {"own_namespace": True}}),
     SD, "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"),
    (jobs_file({"role": "pod", "kubeconfig_file": "k", "namespaces": {"own_namespace": True}}),
     SD, "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously"),
    # the HTTP client's own checks (prometheus/common)
    (jobs_file({"role": "pod", "api_server": "https://a", "bearer_token": "t",
                "bearer_token_file": "/t"}),
     SD, "at most one of bearer_token & bearer_token_file must be configured"),
    (jobs_file({"role": "pod", "api_server": "https://a", "basic_auth": {}, "bearer_token": "t"}),
     SD, "at most one of basic_auth, oauth2, bearer_token & bearer_token_file"),
    (jobs_file({"role": "pod", "api_server": "https://a", "authorization": {},
                "bearer_token_file": "/t"}),
     SD, "authorization is not compatible with bearer_token & bearer_token_file"),
    (jobs_file({"role": "pod", "api_server": "https://a", "authorization": {}, "oauth2": {}}),
     SD, "at most one of basic_auth, oauth2 & authorization must be configured"),
    (jobs_file({"role": "pod", "api_server": "https://a", "no_proxy": "x"}),
     SD, "if no_proxy is configured, proxy_url must also be configured"),
    (jobs_file({"role": "pod", "api_server": "https://a", "proxy_from_environment": True,
                "proxy_url": "http://p"}),
     SD, "if proxy_from_environment is configured, proxy_url must not be configured"),
    (jobs_file({"role": "pod", "api_server": "https://a", "proxy_connect_header": {"a": ["b"]}}),
     SD, "if proxy_connect_header is configured, proxy_url or proxy_from_environment"),
    # jobs
    (jobs_file(job_name="serviceMonitor/ns/web/0"), ("scrape_configs", 0, "job_name"), "no '/'"),
    (jobs_file(job_name=""), ("scrape_configs", 0, "job_name"), "job name ''"),
    (jobs_file(job_name="my job"), ("scrape_configs", 0, "job_name"), "job name 'my job'"),
    (jobs_file(job_name="J" * 129), ("scrape_configs", 0, "job_name"), "1-128"),
    (jobs_file(job_name=".hidden"), ("scrape_configs", 0, "job_name"), "starting with"),
    ({"scrape_configs": [{"kubernetes_sd_configs": [{"role": "pod"}]}]},
     ("scrape_configs", 0, "job_name"), "Field required"),
    ({"scrape_configs": [{"job_name": "a"}]},
     ("scrape_configs", 0, "kubernetes_sd_configs"), "Field required"),
    ({"scrape_configs": [{"job_name": "a", "kubernetes_sd_configs": []}]},
     ("scrape_configs", 0, "kubernetes_sd_configs"), "kubernetes_sd_configs only"),
    ({"scrape_configs": [{"job_name": "a", "kubernetes_sd_configs": [{"role": "pod"}]},
                         {"job_name": "b", "kubernetes_sd_configs": [{"role": "pod"}]},
                         {"job_name": "a", "kubernetes_sd_configs": [{"role": "node"}]}]},
     ("scrape_configs",), "job_name repeated: a"),
    (jobs_file(clusters=[]), ("scrape_configs", 0, "clusters"), "omit `clusters`"),
    (jobs_file(clusters=["a", "a"]), ("scrape_configs", 0, "clusters"), "listed twice"),
    (jobs_file(clusters=["Prod"]), ("scrape_configs", 0, "clusters", 0), "cluster 'Prod'"),
    (jobs_file(cluster_label="job"), ("scrape_configs", 0, "cluster_label"), "collides"),
    (jobs_file(cluster_label="instance"), ("scrape_configs", 0, "cluster_label"), "collides"),
    (jobs_file(cluster_label="__address__"), ("scrape_configs", 0, "cluster_label"), "collides"),
    (jobs_file(cluster_label="__meta_kubernetes_cluster"),
     ("scrape_configs", 0, "cluster_label"), "collides"),
    (jobs_file(cluster_label="__param_x"), ("scrape_configs", 0, "cluster_label"), "collides"),
    (jobs_file(cluster_label="k8s-cluster"),
     ("scrape_configs", 0, "cluster_label"), "not a Prometheus label name"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "loc", "message"), CONFIG_ERRORS)
def test_config_errors_name_their_path(
    data: dict[str, Any], loc: tuple[str | int, ...], message: str
) -> None:
    reported_loc, reported = error_of(data)
    assert reported_loc == loc
    assert message in reported


def test_errors_never_echo_secrets() -> None:
    data = jobs_file({"role": "pod", "basic_auth": {"password": "hunter2"}, "bearer_token": "t0k"})
    # Both the job models and the settings around them hide their input, so neither the
    # error nor its chained causes carry a secret.
    with pytest.raises(ValidationError) as caught:
        ScrapeJob.model_validate(data["scrape_configs"][0])
    assert "hunter2" not in str(caught.value)
    assert "t0k" not in str(caught.value)
    with pytest.raises(ValidationError) as whole:
        ConsumerSettings.model_validate(data)
    assert "hunter2" not in str(whole.value)
    assert "t0k" not in str(whole.value)


def test_several_errors_are_all_reported() -> None:
    data = {"scrape_configs": [{"job_name": "a/b", "kubernetes_sd_configs": [{"role": "x"}]}]}
    with pytest.raises(ValidationError) as caught:
        ConsumerSettings.model_validate(data)
    assert {e["loc"] for e in caught.value.errors()} == {
        ("scrape_configs", 0, "job_name"),
        (*SD, "role"),
    }


# --- contract plumbing -------------------------------------------------------------------


@pytest.mark.parametrize("model", [ConsumerSettings, ScrapeJob, KubernetesSDConfig, SelectorConfig])
def test_json_schema_exports(model: type[BaseModel]) -> None:
    schema = model.model_json_schema()
    json.dumps(schema)
    assert schema["additionalProperties"] is False


def test_json_schema_documents_ignored_keys() -> None:
    properties = ScrapeJob.model_json_schema()["properties"]
    assert set(properties) >= IGNORED_SCRAPE_KEYS
    assert {"job_name", "kubernetes_sd_configs", "clusters", "cluster_label"} <= set(properties)
    assert ScrapeJob.model_json_schema()["required"] == ["job_name", "kubernetes_sd_configs"]


def test_models_are_frozen_and_round_trip() -> None:
    config = ConsumerSettings.model_validate(jobs_file(PASTED["kubernetes_sd_configs"][0]))
    with pytest.raises(ValidationError):
        config.scrape_configs[0].job_name = "other"
    again = ConsumerSettings.model_validate(json.loads(config.model_dump_json()))
    assert again == config
    assert again.scrape_configs[0].kubernetes_sd_configs[0].watching_fields == ()
