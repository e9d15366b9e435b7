"""Export every wire contract as JSON Schema under schemas/json/.

Other monitoring systems read our topics through these files; a test fails
when a committed file and its model disagree.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel

from schemas import config, events, sd_config, targets, web_config

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


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
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
    return sorted(differ + [n for n in have - set(want)])
