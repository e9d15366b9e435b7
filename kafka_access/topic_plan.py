"""What topics must look like, and what an operator must run when a client may not
create them (`kafka.create_topics: false`): pure, so one error names every topic.

A topic sdstream relies on is compacted (a reader rebuilds state from it), has the
partition count it was asked for when the partition number carries meaning (object
topics are partitioned by namespace, alike on every topic of a cluster), and, where
sdstream would set `max.message.bytes`, takes at least that. What sdstream adapts to
instead (a smaller `max.message.bytes` on an existing topic lowers its record limit
with a warning) is no error. Nor is durability: a topic with another replication factor
or `min.insync.replicas` than the settings ask for still works, so `durability_drift`
only names it for a warning (Kafka cannot change a replication factor in place).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

COMPACT = "compact"
MIN_INSYNC = "min.insync.replicas"


@dataclass(frozen=True)
class Wanted:
    name: str
    partitions: int
    partitions_matter: bool = True  # False: any count works (read whole, keyed by hash)
    configs: Mapping[str, str] = field(default_factory=dict)  # set at creation


@dataclass(frozen=True)
class Found:
    partitions: int
    configs: Mapping[str, str]  # as DescribeConfigs reports them ({} if not readable)
    replicas: int | None = None  # fewest replicas of any partition (None: not described)


@dataclass(frozen=True)
class Unfit:
    topic: str
    problem: str  # "missing", or what is wrong with it
    fix: str  # the command that fixes it


def unfit(
    wanted: Sequence[Wanted],
    found: Mapping[str, Found],
    *,
    bootstrap: str,
    replication: int,
) -> list[Unfit]:
    """Every wanted topic that is missing or unusable, with the command that fixes it."""
    result: list[Unfit] = []
    for topic in wanted:
        have = found.get(topic.name)
        if have is None:
            result.append(Unfit(topic.name, "missing", _create(topic, bootstrap, replication)))
            continue
        policy = have.configs.get("cleanup.policy")
        if policy is not None and COMPACT not in policy.split(","):
            fix = _alter(topic.name, bootstrap, f"cleanup.policy={COMPACT}")
            result.append(Unfit(topic.name, f"cleanup.policy={policy!r}, not compact", fix))
        if topic.partitions_matter and have.partitions != topic.partitions:
            result.append(Unfit(
                topic.name, f"{have.partitions} partitions, not {topic.partitions}",
                "delete it and run: " + _create(topic, bootstrap, replication),
            ))  # fmt: skip
    return result


def durability_configs(min_insync: int | None) -> dict[str, str]:
    """Topic configs that carry the settings' durability at creation (the replication
    factor is no config: it is given to CreateTopics itself)."""
    return {} if min_insync is None else {MIN_INSYNC: str(min_insync)}


def durability_drift(
    found: Mapping[str, Found], *, replication: int, min_insync: int | None, bootstrap: str
) -> list[str]:
    """One line per existing topic whose replication factor or `min.insync.replicas`
    differs from the settings' (what Kafka did not say is not judged)."""
    lines = []
    for name, have in sorted(found.items()):
        if have.replicas is not None and have.replicas != replication:
            lines.append(
                f"topic {name} has replication factor {have.replicas}, not {replication} "
                "(kafka.replication_factor); kafka-reassign-partitions.sh changes it"
            )
        insync = have.configs.get(MIN_INSYNC)
        if min_insync is not None and insync is not None and insync != str(min_insync):
            fix = _alter(name, bootstrap, f"{MIN_INSYNC}={min_insync}")
            lines.append(
                f"topic {name} has {MIN_INSYNC}={insync}, not {min_insync} "
                f"(kafka.min_insync_replicas): {fix}"
            )
    return lines


def message(problems: Sequence[Unfit], *, creating: bool) -> str:
    """One line naming every unusable topic and the command that fixes each."""
    named = "; ".join(f"{p.topic} ({p.problem}): {p.fix}" for p in problems)
    why = (
        ""
        if creating
        else (
            "kafka.create_topics is false, so sdstream creates none (a topic this principal may "
            "not describe looks missing too); "
        )
    )
    return f"{why}{len(problems)} topic problem(s), create or fix them and start again: {named}"


def _create(topic: Wanted, bootstrap: str, replication: int) -> str:
    configs = {"cleanup.policy": COMPACT, **topic.configs}
    words = ["kafka-topics.sh", "--bootstrap-server", bootstrap, "--create", "--topic",
             topic.name, "--partitions", str(topic.partitions), "--replication-factor",
             str(replication)]  # fmt: skip
    for key, value in configs.items():
        words += ["--config", f"{key}={value}"]
    return shlex.join(words)


def _alter(name: str, bootstrap: str, config: str) -> str:
    return shlex.join(["kafka-configs.sh", "--bootstrap-server", bootstrap, "--alter",
                       "--entity-type", "topics", "--entity-name", name,
                       "--add-config", config])  # fmt: skip
