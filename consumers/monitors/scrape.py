"""Monitor endpoint -> the scrape parameters of its job, as prometheus-operator writes them.

`jobs` makes what decides the targets (service discovery, relabel rules), which sdstream
applies itself. This module makes the rest of each job: how Prometheus scrapes those
targets (interval, timeout, path, scheme, params, honor_labels, limits, protocols,
metric_relabel_configs, TLS and authorization), with the operator's keys and values
(prometheus-operator v0.89.0 `generateServiceMonitorConfig` / `generatePodMonitorConfig`,
`addSafeTLStoYaml`, `addBasicAuthToYaml`, `addSafeAuthorizationToYaml`), so
`GET /scrape_configs` equals the operator's jobs but for the SD section and relabel rules.

Secrets: the operator inlines a bearer token, basic auth or authorization credentials,
and points TLS keys at `/etc/prometheus/certs/<0|1>_<ns>_<name>_<key>` (0: Secret,
1: ConfigMap). sdstream never holds a Secret's value (the producer's trim keeps only the
reference), so every Secret or ConfigMap key becomes a file under `secrets_dir` named as
the operator names its TLS assets: `tls_config` is then the operator's, and credentials
are `bearer_token_file`, `basic_auth.username_file`/`password_file` and
`authorization.credentials_file`. Names and keys are checked against Kubernetes' own
patterns, so a reference can never name a file outside `secrets_dir`.

Anything a monitor sets that this cannot express faithfully (oauth2, an unparsable value)
raises `jobs.MonitorError`: the monitor makes no job, as the operator rejects it.

Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from consumers.monitors import jobs
from schemas import prom_duration
from schemas.objects import KubeObject, meta
from schemas.relabel import RelabelConfig
from schemas.topics import Resource

OPERATOR_INTERVAL_MS: Final = 30_000  # a Prometheus CR's default scrapeInterval
# One endpoint's parameters, as JSON, at most: what a hostile monitor (huge params or
# metricRelabelings) may add to every /scrape_configs answer. Beyond it: rejected.
MAX_PARAMETER_BYTES: Final = 64 << 10
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # DNS subdomain
_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")  # a Secret / ConfigMap data key
_BYTES = re.compile(r"0|([0-9]*[.])?[0-9]+((K|M|G|T|E|P)i?)?B")  # monitoringv1.ByteSize
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP auth scheme
_PROTOCOLS: Final = frozenset(
    {"PrometheusProto", "OpenMetricsText0.0.1", "OpenMetricsText1.0.0",
     "PrometheusText0.0.4", "PrometheusText1.0.0"}
)  # fmt: skip
_TLS_VERSIONS: Final = frozenset({"TLS10", "TLS11", "TLS12", "TLS13"})
_LIMITS: Final = (
    ("sampleLimit", "sample_limit"),
    ("targetLimit", "target_limit"),
    ("labelLimit", "label_limit"),
    ("labelNameLengthLimit", "label_name_length_limit"),
    ("labelValueLengthLimit", "label_value_length_limit"),
    ("keepDroppedTargets", "keep_dropped_targets"),
)
_TLS_FILES: Final = ("caFile", "certFile", "keyFile")
_HISTOGRAMS: Final = (
    ("scrapeNativeHistograms", "scrape_native_histograms", bool),
    ("nativeHistogramBucketLimit", "native_histogram_bucket_limit", int),
    ("scrapeClassicHistograms", "always_scrape_classic_histograms", bool),
    ("convertClassicHistogramsToNHCB", "convert_classic_histograms_to_nhcb", bool),
)
Params = dict[str, Any]


def parameters(resource: Resource, monitor: KubeObject, *, secrets_dir: str) -> list[Params]:
    """Per endpoint, in endpoint order, the job's keys other than `job_name`, the SD
    section and `relabel_configs`; raises jobs.MonitorError naming the endpoint field."""
    spec = _dict(monitor.get("spec"))
    field = jobs.ENDPOINTS_FIELD[resource]
    files = _Files(str(meta(monitor).get("namespace", "")), secrets_dir)
    result = []
    for i, endpoint in enumerate(_list(spec.get(field))):
        try:
            cfg = _endpoint(resource, spec, _dict(endpoint), files)
        except (ValueError, TypeError) as exc:
            raise jobs.MonitorError(f"{field}[{i}].{exc}") from None
        size = len(orjson.dumps(cfg))
        if size > MAX_PARAMETER_BYTES:
            raise jobs.MonitorError(
                f"{field}[{i}]: scrape parameters of {size} bytes, more than {MAX_PARAMETER_BYTES}"
            )
        result.append(cfg)
    return result


class _Files:
    """Secret and ConfigMap key references -> files under `secrets_dir`."""

    def __init__(self, namespace: str, secrets_dir: str) -> None:
        self._namespace = namespace
        self._dir = secrets_dir.rstrip("/") or "/"

    def secret(self, ref: object, field: str) -> str:
        return self._file(0, ref, field)

    def either(self, ref: object, field: str) -> str | None:
        """A SecretOrConfigMap: the Secret's file, else the ConfigMap's, else None."""
        ref = _dict(ref)
        if ref.get("secret") is not None:
            return self._file(0, ref["secret"], f"{field}.secret")
        if ref.get("configMap") is not None:
            return self._file(1, ref["configMap"], f"{field}.configMap")
        return None

    def _file(self, source: int, ref: object, field: str) -> str:
        selector = _dict(ref)
        name, key = selector.get("name"), selector.get("key")
        for what, value, pattern in (("name", name, _NAME), ("key", key, _KEY),
                                     ("namespace", self._namespace, _NAME)):  # fmt: skip
            if not isinstance(value, str) or not pattern.fullmatch(value) or value in (".", ".."):
                raise ValueError(f"{field}: {what} {value!r} is not a valid Kubernetes {what}")
        return f"{self._dir}/{source}_{self._namespace}_{name}_{key}"


def _endpoint(
    resource: Resource, spec: Mapping[str, Any], ep: Mapping[str, Any], files: _Files
) -> Params:
    """The operator's key order: honor_*, intervals, path, params, scheme, HTTP, auth,
    limits, histograms, protocols, metric_relabel_configs."""
    cfg: Params = {"honor_labels": _bool(ep, "honorLabels") or False}
    _put(cfg, "honor_timestamps", _bool(ep, "honorTimestamps"))
    _put(cfg, "track_timestamps_staleness", _bool(ep, "trackTimestampsStaleness"))
    cfg.update(_timing(ep))
    _put(cfg, "metrics_path", _text(ep, "path"))
    _put(cfg, "params", _params(ep.get("params")))
    scheme = _text(ep, "scheme")
    if scheme is not None and scheme.lower() not in ("http", "https"):
        raise ValueError(f"scheme: {scheme!r} is neither http nor https")
    _put(cfg, "scheme", scheme.lower() if scheme else None)
    _put(cfg, "follow_redirects", _bool(ep, "followRedirects"))
    _put(cfg, "enable_http2", _bool(ep, "enableHttp2"))
    if ep.get("oauth2") is not None:
        raise ValueError("oauth2: not supported by /scrape_configs (its client secret)")
    _put(cfg, "tls_config", _tls(ep.get("tlsConfig"), files, files_allowed=resource
                                 is Resource.SERVICEMONITORS))  # fmt: skip
    if resource is Resource.SERVICEMONITORS:
        _put(cfg, "bearer_token_file", _text(ep, "bearerTokenFile"))
    bearer = _dict(ep.get("bearerTokenSecret"))
    if bearer.get("name"):  # the operator ignores a reference without a name
        cfg["bearer_token_file"] = files.secret(bearer, "bearerTokenSecret")
    _put(cfg, "basic_auth", _basic_auth(ep.get("basicAuth"), files))
    _put(cfg, "authorization", _authorization(ep.get("authorization"), files))
    cfg.update(_spec_options(spec))
    metric = jobs.relabel_configs(ep.get("metricRelabelings"))
    for i, rule in enumerate(metric):
        try:
            RelabelConfig.model_validate(rule)
        except ValueError as exc:
            raise ValueError(f"metricRelabelings[{i}]: {exc}") from None
    _put(cfg, "metric_relabel_configs", metric or None)
    return cfg


def _timing(ep: Mapping[str, Any]) -> Params:
    """interval and scrapeTimeout; a timeout beyond the interval (the CR's 30s when unset)
    is refused, as the operator's `checkServiceMonitor` refuses it."""
    cfg: Params = {}
    interval, timeout = _text(ep, "interval"), _text(ep, "scrapeTimeout")
    interval_ms = OPERATOR_INTERVAL_MS
    if interval is not None:
        interval_ms = _parse_duration("interval", interval)
        cfg["scrape_interval"] = interval
    if timeout is not None:
        if _parse_duration("scrapeTimeout", timeout) > interval_ms:
            raise ValueError(f"scrapeTimeout: {timeout} is greater than the interval")
        cfg["scrape_timeout"] = timeout
    return cfg


def _parse_duration(field: str, text: str) -> int:
    try:
        return prom_duration.parse_ms(text)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def _params(value: object) -> dict[str, list[str]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError("params: not a map of string lists")
    result = {}
    for name, values in value.items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"params: {name!r} is not a list of strings")
        result[str(name)] = list(values)
    return result


def _tls(value: object, files: _Files, *, files_allowed: bool) -> Params | None:
    if value is None:
        return None
    tls, cfg = _dict(value), Params()
    problem = _tls_problem(tls, files_allowed=files_allowed)
    if problem is not None:
        raise ValueError(f"tlsConfig: {problem}")
    _put(cfg, "insecure_skip_verify", _bool(tls, "insecureSkipVerify"))
    _put(cfg, "ca_file", files.either(tls.get("ca"), "tlsConfig.ca"))
    _put(cfg, "cert_file", files.either(tls.get("cert"), "tlsConfig.cert"))
    if tls.get("keySecret") is not None:
        cfg["key_file"] = files.secret(tls["keySecret"], "tlsConfig.keySecret")
    _put(cfg, "server_name", _text(tls, "serverName") or None)
    for field, key in (("minVersion", "min_version"), ("maxVersion", "max_version")):
        version = _text(tls, field)
        if version is not None and version not in _TLS_VERSIONS:
            raise ValueError(
                f"tlsConfig.{field}: {version!r} is not one of {sorted(_TLS_VERSIONS)}"
            )
        _put(cfg, key, version)
    if files_allowed:  # TLSConfig (ServiceMonitor); a PodMonitor's SafeTLSConfig has none
        for field, key in (("caFile", "ca_file"), ("certFile", "cert_file"),
                           ("keyFile", "key_file")):  # fmt: skip
            _put(cfg, key, _text(tls, field))
    return cfg


def _tls_problem(tls: Mapping[str, Any], *, files_allowed: bool) -> str | None:
    """The operator's `TLSConfig.Validate` (a ServiceMonitor's, `files_allowed`) or
    `SafeTLSConfig.Validate` (a PodMonitor's), v0.89.0 `tls_types.go`: its checks in its
    order and words. The operator rejects such a monitor, so sdstream makes no job of it."""
    ca, cert = _is_ref(tls.get("ca")), _is_ref(tls.get("cert"))
    key_secret = tls.get("keySecret") is not None
    low, high = _text(tls, "minVersion"), _text(tls, "maxVersion")
    backwards = low is not None and high is not None and high < low
    if files_allowed:
        ca_file, cert_file, key_file = (bool(_text(tls, f)) for f in _TLS_FILES)
        has_cert, has_key = cert or cert_file, key_file or key_secret
        checks = [
            (ca and ca_file, "cannot specify both 'caFile' and 'ca'"),
            (_both(tls.get("ca")), "ca: cannot specify both Secret and ConfigMap"),
            (cert and cert_file, "cannot specify both 'certFile' and 'cert'"),
            (_both(tls.get("cert")), "cert: cannot specify both Secret and ConfigMap"),
            (key_file and key_secret, "cannot specify both 'keyFile' and 'keySecret'"),
            (has_cert and not has_key, "cannot specify client cert without client key"),
            (has_key and not has_cert, "cannot specify client key without client cert"),
            (backwards, "'maxVersion' must greater than or equal to 'minVersion'"),
        ]
    else:
        checks = [
            (_both(tls.get(f)), f"{f} {_named(tls.get(f))}: cannot specify both Secret and "
             "ConfigMap") for f in ("ca", "cert")
        ]  # fmt: skip
        checks += [
            (cert and not key_secret, "client cert specified without client key"),
            (key_secret and not cert, "client key specified without client cert"),
            (backwards, "maxVersion must more than or equal to minVersion"),
        ]
    return next((problem for failed, problem in checks if failed), None)


def _named(value: object) -> str:
    """A SecretOrConfigMap as Go's `String()` names it (the Secret when both are set)."""
    secret = _dict(_dict(value).get("secret"))
    return f"<secret={secret.get('name', '')},key={secret.get('key', '')}>"


def _both(value: object) -> bool:
    ref = _dict(value)
    return ref.get("secret") is not None and ref.get("configMap") is not None


def _is_ref(value: object) -> bool:
    """A SecretOrConfigMap that is not Go's zero value."""
    ref = _dict(value)
    return ref.get("secret") is not None or ref.get("configMap") is not None


def _basic_auth(value: object, files: _Files) -> Params | None:
    if value is None:
        return None
    auth = _dict(value)
    return {
        "username_file": files.secret(auth.get("username"), "basicAuth.username"),
        "password_file": files.secret(auth.get("password"), "basicAuth.password"),
    }


def _authorization(value: object, files: _Files) -> Params | None:
    if value is None:
        return None
    auth = _dict(value)
    kind = (_text(auth, "type") or "").strip() or "Bearer"
    if not _TOKEN.fullmatch(kind) or kind.lower() == "basic":
        raise ValueError(f"authorization.type: {kind!r} is not an HTTP auth scheme (nor Basic)")
    cfg: Params = {"type": kind}
    if auth.get("credentials") is not None:
        cfg["credentials_file"] = files.secret(auth["credentials"], "authorization.credentials")
    _put(cfg, "credentials_file", _text(auth, "credentialsFile"))
    return cfg


def _spec_options(spec: Mapping[str, Any]) -> Params:
    """The monitor-wide limits, histogram options and protocols (no CR-enforced limits)."""
    cfg: Params = {}
    for field, key in _LIMITS:
        value = spec.get(field)
        if value is not None and (not _is_int(value) or value < 0):
            raise ValueError(f"{field}: {value!r} is not a non-negative integer")
        _put(cfg, key, value)
    for field, key, kind in _HISTOGRAMS:
        value = spec.get(field)
        if value is not None and not (isinstance(value, bool) if kind is bool else _is_int(value)):
            raise ValueError(f"{field}: {value!r} is not a {kind.__name__}")
        _put(cfg, key, value)
    protocols = spec.get("scrapeProtocols")
    if protocols:
        if not isinstance(protocols, list) or not set(protocols) <= _PROTOCOLS:
            raise ValueError(f"scrapeProtocols: not a list of {sorted(_PROTOCOLS)}")
        cfg["scrape_protocols"] = list(protocols)
    fallback = spec.get("fallbackScrapeProtocol")
    if fallback is not None and fallback not in _PROTOCOLS:
        raise ValueError(f"fallbackScrapeProtocol: {fallback!r} is not one of {sorted(_PROTOCOLS)}")
    _put(cfg, "fallback_scrape_protocol", fallback)
    size = spec.get("bodySizeLimit")
    if size not in (None, ""):
        if not isinstance(size, str) or not _BYTES.fullmatch(size):
            raise ValueError(f"bodySizeLimit: {size!r} is not a byte size such as 10MB")
        cfg["body_size_limit"] = size
    return cfg


def _put(cfg: Params, key: str, value: object) -> None:
    if value is not None:
        cfg[key] = value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bool(values: Mapping[str, Any], field: str) -> bool | None:
    value: bool | None = _typed(values, field, bool, "a boolean")
    return value


def _text(values: Mapping[str, Any], field: str) -> str | None:
    value: str | None = _typed(values, field, str, "a string")
    return value


def _typed(values: Mapping[str, Any], field: str, kind: type, what: str) -> Any:
    value = values.get(field)
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{field}: {value!r} is not {what}")
    return value


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
