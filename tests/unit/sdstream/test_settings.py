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


# Kubernetes service links: what kubelet injects for Services named sdstream-kafka
# (port 9092/TCP), sdstream-http (port 80, named "web") and sdstream (port 8080).
SERVICE_LINKS = {
    "SDSTREAM_KAFKA_SERVICE_HOST": "10.0.0.1",
    "SDSTREAM_KAFKA_SERVICE_PORT": "9092",
    "SDSTREAM_KAFKA_PORT": "tcp://10.0.0.1:9092",
    "SDSTREAM_KAFKA_PORT_9092_TCP": "tcp://10.0.0.1:9092",
    "SDSTREAM_KAFKA_PORT_9092_TCP_PROTO": "tcp",
    "SDSTREAM_KAFKA_PORT_9092_TCP_PORT": "9092",
    "SDSTREAM_KAFKA_PORT_9092_TCP_ADDR": "10.0.0.1",
    "SDSTREAM_HTTP_SERVICE_HOST": "10.0.0.2",
    "SDSTREAM_HTTP_SERVICE_PORT": "80",
    "SDSTREAM_HTTP_SERVICE_PORT_WEB": "80",
    "SDSTREAM_HTTP_PORT": "tcp://10.0.0.2:80",
    "SDSTREAM_HTTP_PORT_80_TCP": "tcp://10.0.0.2:80",
    "SDSTREAM_SERVICE_HOST": "fd00::3",
    "SDSTREAM_PORT": "tcp://[fd00::3]:8080",
    "SDSTREAM_PORT_8080_UDP_ADDR": "fd00::3",
}


@pytest.mark.parametrize("kind", [settings.ProducerAppSettings, settings.ConsumerAppSettings])
def test_kubernetes_service_links_are_ignored_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, kind: type[settings.S]
) -> None:
    for name, value in SERVICE_LINKS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SDSTREAM_KAFKA_BOOTSTRAP", "kafka:9092")

    with caplog.at_level("INFO", logger="sdstream.settings"):
        loaded = settings.load(kind, cluster="eu-1") if kind is settings.ProducerAppSettings \
            else settings.load(kind)  # fmt: skip

    assert loaded.kafka.bootstrap == "kafka:9092"
    assert loaded.http.port == kind.model_fields["http"].default.port
    assert "SDSTREAM_HTTP_PORT" in caplog.text
    assert f"Ignoring {len(SERVICE_LINKS)} Kubernetes service-link variables" in caplog.text


def test_a_real_setting_beside_service_links_still_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_HTTP_PORT", "9000")
    monkeypatch.setenv("SDSTREAM_HTTP_SERVICE_HOST", "10.0.0.2")

    assert settings.load(settings.ConsumerAppSettings).http.port == 9000


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("SDSTREAM_KAFKA_BOOTSTRA", "kafka:9092", "kafka.bootstra"),
        ("SDSTREAM_HTTP_PORT", "80a", "http.port"),
        ("SDSTREAM_HTTP_PORT", "http://10.0.0.2:80", "http.port"),  # not a link's shape
        ("SDSTREAM_KAFKA_SERVICE_HOSTS", "10.0.0.1", "kafka.service_hosts"),
        ("SDSTREAM_KAFKA_PORT_9092_HTTP", "tcp://10.0.0.1:9092", "kafka.port_9092_http"),
    ],
)
def test_typos_near_service_link_shapes_still_fail(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(settings.SettingsError, match=field.replace(".", r"\.")):
        settings.load(settings.ConsumerAppSettings)


@pytest.mark.parametrize(
    ("name", "value", "shape"),
    [
        ("SDSTREAM_X_PORT", "tcp://10.0.0.1:80", True),
        ("SDSTREAM_X_PORT", "80", False),
        ("SDSTREAM_X_SERVICE_PORT_METRICS_HTTP", "80", True),
        ("SDSTREAM_HTTP_PORT", "8080", False),
        ("SDSTREAM_X_PORT_53_SCTP_PROTO", "sctp", True),
        ("SDSTREAM_X_PORTS", "tcp://10.0.0.1:80", False),
    ],
)
def test_service_link_shapes(name: str, value: str, shape: bool) -> None:
    names = frozenset(settings.env_names(settings.ConsumerAppSettings))
    assert settings.service_link(name, value, settings=names) is shape


def test_lists_of_names_may_be_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_RESOURCES", "pods, services")
    monkeypatch.setenv("SDSTREAM_NAMESPACES", '["a", "b"]')

    loaded = settings.load(settings.ProducerAppSettings, cluster="eu-1")

    assert [r.value for r in loaded.resources] == ["pods", "services"]
    assert loaded.namespaces == ("a", "b")


def test_validated_lists_of_names_may_be_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """drop_annotations items carry a validator (Annotated), which hid the comma form."""
    monkeypatch.setenv("SDSTREAM_DROP_ANNOTATIONS", "kapp.k14s.io/*, example.com/dump")

    loaded = settings.load(settings.ProducerAppSettings, cluster="eu-1")

    assert loaded.drop_annotations == ("kapp.k14s.io/*", "example.com/dump")


def test_regex_lists_are_json_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_DROP_ANNOTATION_PATTERNS", '["a{1,3}/x", "b.*"]')
    loaded = settings.load(settings.ProducerAppSettings, cluster="eu-1")
    assert loaded.drop_annotation_patterns == ("a{1,3}/x", "b.*")

    monkeypatch.setenv("SDSTREAM_DROP_ANNOTATION_PATTERNS", "a{1,3}/x")  # not split in two
    with pytest.raises(settings.SettingsError, match=r"DROP_ANNOTATION_PATTERNS .*JSON list"):
        settings.load(settings.ProducerAppSettings, cluster="eu-1")


def test_a_list_that_does_not_parse_says_how_to_write_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_RESOURCES", '["pods"')

    with pytest.raises(settings.SettingsError, match=r"SDSTREAM_RESOURCES .*a,b,c"):
        settings.load(settings.ProducerAppSettings, cluster="eu-1")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("cluster: a\nkafka: [\n", "invalid YAML at line 3"),
        ("- a\n- b\n", "expected a mapping of settings, got a list"),
        ("just words\n", "got a string"),
    ],
)
def test_a_config_file_that_is_no_mapping_is_one_clear_error(
    tmp_path: Path, text: str, problem: str
) -> None:
    config = tmp_path / "producer.yml"
    config.write_text(text)

    with pytest.raises(settings.SettingsError, match=problem) as raised:
        settings.load(settings.ProducerAppSettings, config_file=config)
    assert str(config) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_directory_as_config_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(settings.SettingsError, match="is a directory"):
        settings.load(settings.ProducerAppSettings, config_file=tmp_path)


def test_an_empty_config_file_is_no_settings(tmp_path: Path) -> None:
    config = tmp_path / "producer.yml"
    config.write_text("# nothing yet\n")

    loaded = settings.load(settings.ProducerAppSettings, config_file=config, cluster="a")
    assert loaded.cluster == "a"


def test_a_missing_kafka_ca_file_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("SDSTREAM_KAFKA_SSL_CAFILE", "/nonexistent/ca.pem")

    with pytest.raises(settings.SettingsError, match=r"kafka\.ssl_cafile: /nonexistent/ca\.pem"):
        settings.load(settings.ConsumerAppSettings)


@pytest.mark.parametrize(
    ("text", "mode"), [("0644", "644"), ("'0644'", "0644"), ("0600", "600"), ("0044", "044")]
)
def test_an_unquoted_octal_file_sd_mode_in_yaml_is_octal(
    tmp_path: Path, text: str, mode: str
) -> None:
    """YAML 1.1 reads `file_sd_mode: 0644` as the integer 420 (0o644)."""
    config = tmp_path / "consumer.yml"
    config.write_text(f"file_sd_mode: {text}\n")

    loaded = settings.load(settings.ConsumerAppSettings, config_file=config)

    assert (loaded.file_sd_mode, loaded.file_sd_permissions) == (mode, int(mode, 8))


@pytest.mark.parametrize("text", ["644", "-1", "true"])
def test_a_decimal_file_sd_mode_in_yaml_is_refused(tmp_path: Path, text: str) -> None:
    config = tmp_path / "consumer.yml"
    config.write_text(f"file_sd_mode: {text}\n")

    with pytest.raises(settings.SettingsError, match=r"^invalid settings: file_sd_mode: "):
        settings.load(settings.ConsumerAppSettings, config_file=config)


def test_file_sd_mode_from_the_environment_is_a_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDSTREAM_FILE_SD_MODE", "0644")
    assert settings.load(settings.ConsumerAppSettings).file_sd_permissions == 0o644


def test_a_bad_relabel_rule_is_prometheus_s_error_at_its_path(tmp_path: Path) -> None:
    """docs/relabeling.md §2: Prometheus's text, the rule's path, one line."""
    config = tmp_path / "consumer.yml"
    config.write_text(
        "kafka: {bootstrap: 'localhost:9092'}\n"
        "scrape_configs:\n"
        "- job_name: pods\n"
        "  kubernetes_sd_configs: [{role: pod}]\n"
        "  relabel_configs:\n"
        "  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}\n"
        "  - {action: hashmod, target_label: shard}\n"
    )
    with pytest.raises(settings.SettingsError) as raised:
        settings.load(settings.ConsumerAppSettings, config_file=config)
    assert str(raised.value) == (
        "invalid settings: scrape_configs.0.relabel_configs.1: "
        "relabel configuration for hashmod requires non-zero modulus"
    )


def test_more_in_sync_replicas_than_replicas_is_one_line_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SDSTREAM_KAFKA_REPLICATION_FACTOR", "2")
    monkeypatch.setenv("SDSTREAM_KAFKA_MIN_INSYNC_REPLICAS", "3")

    with pytest.raises(settings.SettingsError) as raised:
        settings.load(settings.ProducerAppSettings, cluster="eu-1")
    line = str(raised.value)
    assert "\n" not in line
    assert "kafka" in line
    assert "min_insync_replicas 3 exceeds replication_factor 2" in line


def test_min_insync_replicas_up_to_the_replication_factor_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SDSTREAM_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SDSTREAM_KAFKA_MIN_INSYNC_REPLICAS", "2")
    loaded = settings.load(settings.ProducerAppSettings, cluster="eu-1")
    assert (loaded.kafka.replication_factor, loaded.kafka.min_insync_replicas) == (3, 2)
    monkeypatch.setenv("SDSTREAM_KAFKA_MIN_INSYNC_REPLICAS", "0")
    with pytest.raises(settings.SettingsError, match=r"kafka\.min_insync_replicas"):
        settings.load(settings.ProducerAppSettings, cluster="eu-1")
