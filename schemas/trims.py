"""What each object topic keeps of an API object: the producer's whitelists, as data.

A whitelist per resource, from the Prometheus SD contract (fields the roles read):
whatever is not listed (managedFields, env, volumes, secrets, probes, ...) never
reaches Kafka. Fields a server-side field selector can name are kept as well, so a
consumer can emulate selectors. `producers.trim` applies them; they live here because
they are the contract of what a consumer may read from a topic, and each row of
`schemas.resources` names its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# A spec maps a field to True (keep the value whole) or to a nested spec. A nested
# spec applied to a list applies to each element.
Spec = Mapping[str, "Spec | bool"]

_OWNER: Final[Spec] = {"apiVersion": True, "kind": True, "name": True, "controller": True}
META: Final[Spec] = {
    "name": True,
    "namespace": True,
    "uid": True,
    "resourceVersion": True,
    "labels": True,
    "annotations": True,
    "ownerReferences": _OWNER,
}
_PORTS: Final[Spec] = {"name": True, "containerPort": True, "protocol": True}
_CONTAINER: Final[Spec] = {"name": True, "image": True, "ports": _PORTS, "restartPolicy": True}
_CONTAINER_STATUS: Final[Spec] = {"name": True, "containerID": True}
_CONDITION: Final[Spec] = {"type": True, "status": True}
_TARGET_REF: Final[Spec] = {"kind": True, "name": True, "namespace": True}
_EP_ADDRESS: Final[Spec] = {
    "ip": True,
    "hostname": True,
    "nodeName": True,
    "targetRef": _TARGET_REF,
}

POD: Final[Spec] = {
    "spec": {
        "nodeName": True,
        "containers": _CONTAINER,
        "initContainers": _CONTAINER,
        # named by field selectors
        "restartPolicy": True,
        "schedulerName": True,
        "serviceAccountName": True,
        "hostNetwork": True,
    },
    "status": {
        "phase": True,
        "podIP": True,
        "podIPs": True,
        "hostIP": True,
        "nominatedNodeName": True,
        "conditions": _CONDITION,
        "containerStatuses": _CONTAINER_STATUS,
        "initContainerStatuses": _CONTAINER_STATUS,
    },
}
SERVICE: Final[Spec] = {
    "spec": {
        "ports": {"name": True, "port": True, "protocol": True},
        "type": True,
        "clusterIP": True,
        "externalName": True,
        "loadBalancerIP": True,
        "ipFamilyPolicy": True,
        "ipFamilies": True,
    },
    "status": {"loadBalancer": {"ingress": {"ip": True, "hostname": True}}},
}
ENDPOINTS: Final[Spec] = {
    "subsets": {
        "addresses": _EP_ADDRESS,
        "notReadyAddresses": _EP_ADDRESS,
        "ports": {"name": True, "port": True, "protocol": True},
    }
}
ENDPOINTSLICE: Final[Spec] = {
    "addressType": True,
    "ports": {"name": True, "port": True, "protocol": True, "appProtocol": True},
    "endpoints": {
        "addresses": True,
        "conditions": {"ready": True, "serving": True, "terminating": True},
        "hostname": True,
        "nodeName": True,
        "zone": True,
        "targetRef": _TARGET_REF,
        "deprecatedTopology": True,
    },
}
INGRESS: Final[Spec] = {
    "spec": {
        "ingressClassName": True,
        "tls": {"hosts": True},
        "rules": {"host": True, "http": {"paths": {"path": True}}},
    }
}
NODE: Final[Spec] = {
    "spec": {"providerID": True, "unschedulable": True},
    "status": {
        "addresses": {"type": True, "address": True},
        "conditions": _CONDITION,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": True}},
    },
}
NOTHING: Final[Spec] = {}  # metadata only: owner chains and namespace labels

# Prometheus Operator monitors (monitoring.coreos.com/v1): what job generation reads
# (prometheus-operator `generateServiceMonitorConfig` / `generatePodMonitorConfig`):
# the selectors, the label options and, per endpoint, the port, the relabelings and the
# scrape parameters. Of authentication only the references are kept (which Secret or
# ConfigMap key, which file, which TLS server name): `GET /scrape_configs` turns them into
# file paths the user's Prometheus reads (docs/monitors.md). Secret values are never in
# a monitor, so never on a topic; oauth2 is kept as its token URL only, to refuse it;
# proxy settings are not kept (a proxy URL may carry credentials).
_LABEL_SELECTOR: Final[Spec] = {
    "matchLabels": True,
    "matchExpressions": {"key": True, "operator": True, "values": True},
}
_RELABEL: Final[Spec] = {
    "sourceLabels": True,
    "separator": True,
    "targetLabel": True,
    "regex": True,
    "modulus": True,
    "replacement": True,
    "action": True,
}
_SECRET_KEY: Final[Spec] = {"name": True, "key": True, "optional": True}
_SECRET_OR_CONFIGMAP: Final[Spec] = {"secret": _SECRET_KEY, "configMap": _SECRET_KEY}
_TLS: Final[Spec] = {
    "ca": _SECRET_OR_CONFIGMAP,
    "cert": _SECRET_OR_CONFIGMAP,
    "keySecret": _SECRET_KEY,
    "caFile": True,
    "certFile": True,
    "keyFile": True,
    "serverName": True,
    "insecureSkipVerify": True,
    "minVersion": True,
    "maxVersion": True,
}
_SCRAPE: Final[Spec] = {
    "targetPort": True,
    "path": True,
    "scheme": True,
    "params": True,
    "interval": True,
    "scrapeTimeout": True,
    "honorLabels": True,
    "honorTimestamps": True,
    "trackTimestampsStaleness": True,
    "filterRunning": True,
    "followRedirects": True,
    "enableHttp2": True,
    "relabelings": _RELABEL,
    "metricRelabelings": _RELABEL,
    "tlsConfig": _TLS,
    "bearerTokenSecret": _SECRET_KEY,
    "bearerTokenFile": True,
    "basicAuth": {"username": _SECRET_KEY, "password": _SECRET_KEY},
    "authorization": {"type": True, "credentials": _SECRET_KEY, "credentialsFile": True},
    "oauth2": {"tokenUrl": True},
}
_MONITOR: Final[Spec] = {
    "jobLabel": True,
    "podTargetLabels": True,
    "selector": _LABEL_SELECTOR,
    "selectorMechanism": True,
    "namespaceSelector": {"any": True, "matchNames": True},
    "attachMetadata": {"node": True},
    # scrape limits and protocols, copied to the job as the operator does
    "sampleLimit": True,
    "targetLimit": True,
    "labelLimit": True,
    "labelNameLengthLimit": True,
    "labelValueLengthLimit": True,
    "keepDroppedTargets": True,
    "scrapeProtocols": True,
    "fallbackScrapeProtocol": True,
    "bodySizeLimit": True,
    "scrapeNativeHistograms": True,
    "nativeHistogramBucketLimit": True,
    "scrapeClassicHistograms": True,
    "convertClassicHistogramsToNHCB": True,
}
SERVICEMONITOR: Final[Spec] = {
    "spec": {
        **_MONITOR,
        "targetLabels": True,
        "serviceDiscoveryRole": True,
        "endpoints": {**_SCRAPE, "port": True},
    }
}
PODMONITOR: Final[Spec] = {
    "spec": {**_MONITOR, "podMetricsEndpoints": {**_SCRAPE, "port": True, "portNumber": True}}
}
