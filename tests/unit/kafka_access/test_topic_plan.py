"""With create_topics false, one error names every unusable topic and what to run."""

from __future__ import annotations

from kafka_access import topic_plan
from kafka_access.topic_plan import Found, Wanted

COMPACTED = {"cleanup.policy": "compact"}


def test_fit_topics_are_no_problem() -> None:
    wanted = [Wanted("p.c.pods", 6), Wanted("p.targets", 6, partitions_matter=False)]
    found = {"p.c.pods": Found(6, COMPACTED), "p.targets": Found(3, COMPACTED)}
    assert topic_plan.unfit(wanted, found, bootstrap="b:1", replication=3) == []


def test_every_missing_or_unusable_topic_is_named_with_its_fix() -> None:
    wanted = [
        Wanted("p.c.pods", 6),
        Wanted("p.c.nodes", 6),
        Wanted("p.c.services", 6),
        Wanted("p.targets", 6, partitions_matter=False, configs={"max.message.bytes": "4195328"}),
    ]
    found = {
        "p.c.nodes": Found(3, COMPACTED),
        "p.c.services": Found(6, {"cleanup.policy": "delete"}),
    }
    problems = topic_plan.unfit(wanted, found, bootstrap="b:1", replication=3)
    assert [(p.topic, p.problem) for p in problems] == [
        ("p.c.pods", "missing"),
        ("p.c.nodes", "3 partitions, not 6"),
        ("p.c.services", "cleanup.policy='delete', not compact"),
        ("p.targets", "missing"),
    ]
    assert problems[0].fix == (
        "kafka-topics.sh --bootstrap-server b:1 --create --topic p.c.pods --partitions 6 "
        "--replication-factor 3 --config cleanup.policy=compact"
    )
    assert problems[1].fix.startswith("delete it and run: kafka-topics.sh")
    assert problems[2].fix == (
        "kafka-configs.sh --bootstrap-server b:1 --alter --entity-type topics "
        "--entity-name p.c.services --add-config cleanup.policy=compact"
    )
    assert problems[3].fix.endswith("--config max.message.bytes=4195328")
    line = topic_plan.message(problems, creating=False)
    assert "\n" not in line
    assert "kafka.create_topics is false" in line
    for topic in ("p.c.pods", "p.c.nodes", "p.c.services", "p.targets"):
        assert topic in line


def test_unknown_configs_are_not_a_problem() -> None:
    """Without DESCRIBE_CONFIGS the policy is unknown: not reported as wrong."""
    found = {"p.c.pods": Found(6, {})}
    assert topic_plan.unfit([Wanted("p.c.pods", 6)], found, bootstrap="b", replication=1) == []


def test_a_policy_of_compact_and_delete_is_compacted() -> None:
    found = {"t": Found(1, {"cleanup.policy": "compact,delete"})}
    assert topic_plan.unfit([Wanted("t", 1)], found, bootstrap="b", replication=1) == []


def test_durability_configs_set_min_insync_only_when_asked() -> None:
    assert topic_plan.durability_configs(None) == {}
    assert topic_plan.durability_configs(2) == {"min.insync.replicas": "2"}


def test_a_min_insync_setting_is_part_of_the_create_command() -> None:
    configs = topic_plan.durability_configs(2)
    (problem,) = topic_plan.unfit([Wanted("p.c.pods", 6, configs=configs)], {},
                                  bootstrap="b:1", replication=3)  # fmt: skip
    assert problem.fix.endswith(
        "--replication-factor 3 --config cleanup.policy=compact --config min.insync.replicas=2"
    )


def test_durability_drift_names_each_topic_and_what_differs() -> None:
    found = {
        "p.c.pods": Found(6, {"min.insync.replicas": "1"}, replicas=1),
        "p.c.nodes": Found(6, {"min.insync.replicas": "2"}, replicas=3),
        "p.targets": Found(6, {}, replicas=None),  # nothing said: nothing judged
    }
    lines = topic_plan.durability_drift(found, replication=3, min_insync=2, bootstrap="b:1")
    assert lines == [
        "topic p.c.pods has replication factor 1, not 3 (kafka.replication_factor); "
        "kafka-reassign-partitions.sh changes it",
        "topic p.c.pods has min.insync.replicas=1, not 2 (kafka.min_insync_replicas): "
        "kafka-configs.sh --bootstrap-server b:1 --alter --entity-type topics "
        "--entity-name p.c.pods --add-config min.insync.replicas=2",
    ]


def test_without_a_min_insync_setting_the_broker_default_is_not_judged() -> None:
    found = {"t": Found(1, {"min.insync.replicas": "1"}, replicas=1)}
    assert topic_plan.durability_drift(found, replication=1, min_insync=None, bootstrap="b") == []
