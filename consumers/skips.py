"""Why a consumer skips a record: one vocabulary for the fold and the sinks.

The values are the `reason` label of `sdstream_fold_records_skipped_total` (object
topics) and `sdstream_sink_skipped_records_total` (the targets topic). The same fault
has the same name on both sides, so one alert or dashboard query covers the pipeline;
docs/RELIABILITY.md#skip-reasons lists them for users.

Pure: constants and one exception, no Kafka client, no logging.
"""

from __future__ import annotations

# Any record, any topic.
NO_KEY = "no_key"  # compacted topics need a key; a keyless record can never be superseded
BAD_KEY = "bad_key"  # key is not UTF-8
INVALID_JSON = "invalid_json"  # value is not JSON
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"  # written by a newer (or broken) writer
KEY_MISMATCH = "key_mismatch"  # the key is not the one its value says it should have
# Object topics (the fold).
INVALID_EVENT = "invalid_event"  # JSON, but not an object event
TOPIC_MISMATCH = "topic_mismatch"  # an event for another cluster or resource
WRONG_PARTITION = "wrong_partition"  # not on the partition its key maps to
# The targets topic (the sinks).
INVALID_GROUP = "invalid_group"  # JSON, but not a target group
UNCONFIGURED_JOB = "unconfigured_job"  # a job this replica does not serve

FOLD_REASONS = (
    NO_KEY, BAD_KEY, INVALID_JSON, UNKNOWN_SCHEMA_VERSION, KEY_MISMATCH, INVALID_EVENT,
    TOPIC_MISMATCH, WRONG_PARTITION,
)  # fmt: skip
SINK_REASONS = (
    NO_KEY, BAD_KEY, INVALID_JSON, UNKNOWN_SCHEMA_VERSION, KEY_MISMATCH, INVALID_GROUP,
    UNCONFIGURED_JOB,
)  # fmt: skip


class BadRecord(ValueError):
    """A record that cannot be applied; `reason` is one of the values above, `detail`
    (also the message) says what was wrong with this record."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
