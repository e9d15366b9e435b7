"""Settings come from flags, SDSTREAM_* variables and a YAML file, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdstream import settings


def test_environment_fills_nested_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_CLUSTER", "eu-1")
    monkeypatch.setenv("SDSTREAM_KAFKA_BOOTSTRAP", "10.9.9.9:9092")
    monkeypatch.setenv("SDSTREAM_LEADER_LEASE_DURATION_S", "7.5")

    loaded = settings.load(settings.ProducerAppSettings)

    assert (loaded.cluster, loaded.kafka.bootstrap) == ("eu-1", "10.9.9.9:9092")
    assert loaded.leader.lease_duration_s == 7.5


def test_flags_beat_environment_beats_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "producer.yml"
    config.write_text("cluster: from-file\npartitions: 3\nkafka:\n  bootstrap: file:9092\n")
    monkeypatch.setenv("SDSTREAM_KAFKA_BOOTSTRAP", "env:9092")

    loaded = settings.load(settings.ProducerAppSettings, config_file=config, cluster="from-flag")

    assert (loaded.cluster, loaded.kafka.bootstrap, loaded.partitions) == (
        "from-flag",
        "env:9092",
        3,
    )


def test_bad_values_name_the_field_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_KAFKA_TOPIC_PREFIX", "Bad_Prefix")

    with pytest.raises(settings.SettingsError, match=r"kafka\.topic_prefix"):
        settings.load(settings.ProducerAppSettings, cluster="eu-1")


def test_unknown_keys_in_the_file_are_errors(tmp_path: Path) -> None:
    config = tmp_path / "producer.yml"
    config.write_text("cluster: eu-1\nclsuter: typo\n")

    with pytest.raises(settings.SettingsError, match="clsuter"):
        settings.load(settings.ProducerAppSettings, config_file=config)


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(settings.SettingsError, match="does not exist"):
        settings.load(settings.ProducerAppSettings, config_file=tmp_path / "nope.yml")


def test_the_targets_topic_defaults_to_the_prefixs_and_can_be_named(tmp_path: Path) -> None:
    config = tmp_path / "consumer.yml"
    config.write_text("kafka: {topic_prefix: prod}\n")
    assert settings.load(settings.ConsumerAppSettings, config_file=config).targets == "prod.targets"

    config.write_text("kafka: {topic_prefix: prod}\ntargets_topic: team-a.targets\n")
    loaded = settings.load(settings.ConsumerAppSettings, config_file=config)
    assert loaded.targets == "team-a.targets"


@pytest.mark.parametrize("topic", ["prod.east.pods", "no spaces", ".."])
def test_a_targets_topic_that_kafka_or_the_fold_would_misread_is_refused(
    tmp_path: Path, topic: str
) -> None:
    config = tmp_path / "consumer.yml"
    config.write_text(f"kafka: {{topic_prefix: prod}}\ntargets_topic: '{topic}'\n")

    with pytest.raises(settings.SettingsError, match="targets_topic"):
        settings.load(settings.ConsumerAppSettings, config_file=config)
