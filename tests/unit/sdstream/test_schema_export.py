"""The committed JSON Schemas are the contract other systems read: they must match."""

from __future__ import annotations

from pathlib import Path

from sdstream import schema_export


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
