"""Consumer settings refuse at load what would otherwise fail later, inside a Kafka client."""

from __future__ import annotations

import pydantic
import pytest

from schemas.config import ConsumerSettings


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
