"""Export every wire contract as JSON Schema under schemas/json/.

Other monitoring systems read our topics through these files; a test fails
when a committed file and its model disagree. The Helm chart's values.schema.json is
generated here too (`sdstream.chart_schema`), and checked the same way.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel

from schemas import config, events, sd_config, targets, web_config
from sdstream import chart_schema

CONTRACTS: dict[str, type[BaseModel]] = {
    "object-event": events.ObjectEvent,
    "target-group": targets.TargetGroup,
    "producer-settings": config.ProducerSettings,
    "consumer-settings": config.ConsumerSettings,
    "scrape-job": sd_config.ScrapeJob,
    "kubernetes-sd-config": sd_config.KubernetesSDConfig,
    "web-config": web_config.WebConfig,
}


def default_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "schemas" / "json"


def rendered() -> dict[str, bytes]:
    return {
        f"{name}.schema.json": orjson.dumps(
            model.model_json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        + b"\n"
        for name, model in sorted(CONTRACTS.items())
    }


def _dumps(schema: object) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def chart_values() -> tuple[Path, bytes]:
    """Where the chart's values.schema.json lives, and what it must hold."""
    return chart_schema.chart_dir() / "values.schema.json", _dumps(chart_schema.values_schema())


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    chart_path, chart_body = chart_values()
    if not chart_path.exists() or chart_path.read_bytes() != chart_body:
        chart_path.write_bytes(chart_body)
        written.append(chart_path)
    for name, body in rendered().items():
        path = directory / name
        if not path.exists() or path.read_bytes() != body:
            path.write_bytes(body)
            written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of committed schema files that differ from (or are missing for) the models."""
    want = rendered()
    have = {p.name for p in directory.glob("*.schema.json")}
    differ = [n for n, body in want.items() if not (directory / n).exists()
              or (directory / n).read_bytes() != body]  # fmt: skip
    chart_path, chart_body = chart_values()
    if not chart_path.exists() or chart_path.read_bytes() != chart_body:
        differ.append(str(chart_path))  # absolute: `dir / name` prints it as is
    return sorted(differ + [n for n in have - set(want)])
