"""The Helm chart's values.schema.json, generated from the settings models.

The chart passes `producer.settings`, `consumer.settings` and `kafka` to the processes
as their config file, so those parts of the schema are the models' own JSON Schema: a
value `sdstream produce` would refuse at start is refused by `helm install` first, and
chart and program cannot drift (`sdstream schema check` compares the committed file).
The fields the chart sets itself (Kafka credential files, HTTP bind address, leader
election, the mode) are left out, so a user cannot set them twice; `sasl_password` is
left out because a password belongs in a Secret, never in values or a ConfigMap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas import config

# Set by the chart from kafkaCA / <component>.kafkaUser (files mounted from Secrets).
KAFKA_FROM_SECRETS = (
    "sasl_username",
    "sasl_password",
    "sasl_password_file",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_keyfile_password_file",
)
PRODUCER_SET_BY_CHART = ("kafka", "kube", "leader", "http")
CONSUMER_SET_BY_CHART = ("kafka", "http", "mode", "group_instance_id")

Schema = dict[str, Any]


def chart_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "deploy" / "helm" / "sdstream"


def _model(model: type[BaseModel], defs: Schema, *, drop: tuple[str, ...]) -> Schema:
    """The model's schema less `drop`, its $defs hoisted into `defs` (refs stay valid)."""
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    for name, body in schema.pop("$defs", {}).items():
        if defs.setdefault(name, body) != body:
            raise ValueError(f"two different models named {name}")
    for name in drop:
        schema["properties"].pop(name)
    if "required" in schema:
        schema["required"] = [n for n in schema["required"] if n not in drop]
    return schema


def _obj(properties: Schema, *, required: tuple[str, ...] = ()) -> Schema:
    body: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        body["required"] = list(required)
    return body


_STR: Schema = {"type": "string"}
_BOOL: Schema = {"type": "boolean"}
_MAP: Schema = {"type": "object"}
_LIST: Schema = {"type": "array"}
_REPLICAS: Schema = {"type": "integer", "minimum": 0}
_SECRET_KEY = _obj({"name": _STR, "key": {"type": "string", "minLength": 1}})
_KAFKA_USER = _obj(
    {"username": _STR, "passwordSecret": _SECRET_KEY, "certSecretName": _STR},
)


_NAME: Schema = {"type": "string", "minLength": 1}
_KEY_REF = _obj({"name": _NAME, "key": _NAME}, required=("name", "key"))
# How Prometheus reaches /metrics behind serve.webConfig (the operator's endpoint fields,
# credentials only from Secrets).
_SCRAPE_SECURITY: Schema = {
    "scheme": {"enum": ["", "http", "https"]},
    "tlsConfig": _obj(
        {
            "ca": {
                "oneOf": [
                    _obj({}),
                    _obj({"secret": _KEY_REF}, required=("secret",)),
                    _obj({"configMap": _KEY_REF}, required=("configMap",)),
                ]
            },
            "serverName": _STR,
            "insecureSkipVerify": _BOOL,
        }
    ),
    "bearerTokenSecret": _obj({"name": _STR, "key": {"type": "string", "minLength": 1}}),
    "basicAuth": {
        "oneOf": [
            _obj({}),
            _obj({"username": _KEY_REF, "password": _KEY_REF}, required=("username", "password")),
        ]
    },
}


def _component(extra: Schema) -> Schema:
    return _obj(
        {
            "enabled": _BOOL,
            "replicas": _REPLICAS,
            "kafkaUser": _KAFKA_USER,
            "resources": _MAP,
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
            "tolerations": _LIST,
            "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
            **extra,
        }
    )


def values_schema() -> Schema:
    defs: Schema = {}
    kafka = _model(config.KafkaSettings, defs, drop=KAFKA_FROM_SECRETS)
    producer = _model(config.ProducerSettings, defs, drop=PRODUCER_SET_BY_CHART)
    consumer = _model(config.ConsumerSettings, defs, drop=CONSUMER_SET_BY_CHART)
    serve = {
        "webConfig": _obj(
            {
                "secretName": _STR,
                "key": {"type": "string", "minLength": 1},
                "tls": _BOOL,
                "bearerTokenKey": _STR,
            }
        ),
        "service": _obj(
            {
                "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            }
        ),
        "podDisruptionBudget": _obj(
            {"enabled": _BOOL, "minAvailable": {"type": ["integer", "string"]}}
        ),
        "networkPolicy": _obj({"enabled": _BOOL, "from": _LIST}),
    }
    labelled = {
        "enabled": _BOOL,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sdstream chart values (generated by `sdstream schema export`)",
        **_obj(
            {
                "global": _MAP,
                "image": _obj(
                    {
                        "repository": _STR,
                        "tag": _STR,
                        "digest": {"type": "string", "pattern": "^(sha256:[0-9a-f]{64})?$"},
                        "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                    }
                ),
                "imagePullSecrets": _LIST,
                "uid": {"type": "integer", "minimum": 1},
                "kafka": kafka,
                "kafkaCA": _obj({"secretName": _STR, "key": {"type": "string", "minLength": 1}}),
                "commonLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                "producer": _component({"settings": producer}),
                "consumer": _obj({"settings": consumer}),
                "fold": _component({"staticMembership": _BOOL}),
                "serve": _component(serve),
                "monitoring": _obj(
                    {
                        "serviceMonitor": _obj({**labelled, "interval": _STR, **_SCRAPE_SECURITY}),
                        "prometheusRule": _obj(labelled),
                        "dashboard": _obj(labelled),
                    }
                ),
            }
        ),
        "$defs": dict(sorted(defs.items())),
    }
