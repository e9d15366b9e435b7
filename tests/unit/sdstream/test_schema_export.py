"""The committed JSON Schemas are the contract other systems read: they must match."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import config
from sdstream import chart_schema, schema_export


def test_committed_schemas_match_the_models() -> None:
    assert schema_export.stale(schema_export.default_dir()) == []


def test_a_changed_file_is_reported(tmp_path: Path) -> None:
    schema_export.export(tmp_path)
    victim = tmp_path / "target-group.schema.json"
    victim.write_text(victim.read_text().replace('"labels"', '"labelz"', 1))

    assert schema_export.stale(tmp_path) == ["target-group.schema.json"]


def test_export_writes_each_contract_once(tmp_path: Path) -> None:
    first = schema_export.export(tmp_path)
    again = schema_export.export(tmp_path)

    assert {p.name for p in first} >= {"object-event.schema.json", "target-group.schema.json"}
    assert again == []


def test_a_stale_chart_values_schema_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chart = tmp_path / "chart"
    chart.mkdir()
    monkeypatch.setattr(chart_schema, "chart_dir", lambda: chart)
    schema_export.export(tmp_path)
    assert schema_export.stale(tmp_path) == []
    (chart / "values.schema.json").write_text("{}\n")

    assert schema_export.stale(tmp_path) == [str(chart / "values.schema.json")]


def test_chart_settings_are_the_models_less_what_the_chart_sets() -> None:
    values = chart_schema.values_schema()["properties"]
    producer = values["producer"]["properties"]["settings"]["properties"]
    consumer = values["consumer"]["properties"]["settings"]["properties"]
    kafka = values["kafka"]["properties"]

    assert set(producer) == set(config.ProducerSettings.model_fields) - {
        "kafka", "kube", "leader", "http"
    }  # fmt: skip
    assert set(consumer) == set(config.ConsumerSettings.model_fields) - {
        "kafka", "http", "mode", "group_instance_id"  # per pod: the fold's pod name
    }  # fmt: skip
    assert {"replication_factor", "min_insync_replicas"} <= set(kafka)
    assert not {"sasl_password", "sasl_password_file", "ssl_keyfile"} & set(kafka)
