"""The annotation-driven relabel_configs most clusters run: keep pods annotated
`prometheus.io/scrape: "true"`, take path and port from the annotations, map pod labels,
add namespace and pod. The promtool differential, the end-to-end test and
bench/relabel.py all use this one rule set.

Data only: bench scripts import it without pytest or hypothesis.
"""

from __future__ import annotations

from typing import Any

KEEP: dict[str, Any] = {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                        "action": "keep", "regex": "true"}  # fmt: skip
AFTER_KEEP: list[dict[str, Any]] = [
    {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
     "action": "replace", "target_label": "__metrics_path__", "regex": "(.+)"},
    {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
     "action": "replace", "regex": "([^:]+)(?::\\d+)?;(\\d+)", "replacement": "$1:$2",
     "target_label": "__address__"},
    {"action": "labelmap", "regex": "__meta_kubernetes_pod_label_(.+)"},
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
]  # fmt: skip
TYPICAL: list[dict[str, Any]] = [KEEP, *AFTER_KEEP]
