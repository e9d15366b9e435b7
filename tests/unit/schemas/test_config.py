"""Settings refuse at load what would otherwise fail later, inside a client or a request."""

from __future__ import annotations

import pydantic
import pytest

from schemas.config import MAX_SHARDS, ConsumerSettings, HttpSettings


@pytest.mark.parametrize(("mode", "bits"), [("0644", 0o644), ("640", 0o640), ("0600", 0o600)])
def test_file_sd_mode_is_octal(mode: str, bits: int) -> None:
    assert ConsumerSettings(file_sd_mode=mode).file_sd_permissions == bits


@pytest.mark.parametrize("mode", ["644o", "0o644", "0888", "4755x", "", "rw-r--r--", "06440"])
def test_a_bad_file_sd_mode_is_refused_at_load(mode: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="file_sd_mode"):
        ConsumerSettings(file_sd_mode=mode)


@pytest.mark.parametrize(
    "fields",
    [{"http_sd_max_shards": 0}, {"http_sd_max_shards": MAX_SHARDS + 1},
     {"http_sd_cache_bytes": -1}],
)  # fmt: skip
def test_http_sd_limits_are_bounded(fields: dict[str, int]) -> None:
    with pytest.raises(pydantic.ValidationError):
        ConsumerSettings.model_validate(fields)


@pytest.mark.parametrize("fields", [{"max_connections": 0}, {"write_timeout_s": 0}])
def test_http_limits_are_positive(fields: dict[str, float]) -> None:
    with pytest.raises(pydantic.ValidationError):
        HttpSettings.model_validate(fields)


@pytest.mark.parametrize("pattern", [".*", "prod-.*", "east|west", "(?:a|b)-[0-9]+"])
def test_a_regular_expression_is_a_cluster_pattern(pattern: str) -> None:
    assert ConsumerSettings(cluster_pattern=pattern).cluster_pattern == pattern


@pytest.mark.parametrize("pattern", ["prod-(", "[a-", "*", "(?i)prod"])
def test_a_pattern_that_cannot_be_compiled_in_the_topic_pattern_is_refused(
    pattern: str,
) -> None:
    """ "(?i)" compiles alone but not inside the topic pattern (a global flag not at the
    start), which is how the fold uses it."""
    with pytest.raises(pydantic.ValidationError) as caught:
        ConsumerSettings(cluster_pattern=pattern)
    assert caught.value.errors()[0]["loc"] == ("cluster_pattern",)


def test_max_group_bytes_has_a_floor() -> None:
    with pytest.raises(pydantic.ValidationError):
        ConsumerSettings(max_group_bytes=10)
