"""ACLs of the secured devstack broker, per topic prefix: who may do what on its topics.

aiokafka 0.14's admin client has no `create_acls`, but its protocol module has the
CreateAcls request (v0-v1, one binding per request); the broker picks v1, which knows
prefixed patterns. ACLs are created through the PLAINTEXT listener, whose principal
(User:ANONYMOUS) is a super user, so granting needs no credentials and no JVM start.

For a topic prefix `P` and clusters `C`:

- `producer-<c>` (c in C): topics prefixed `P.<c>.`: create, write, read, describe,
  describe-configs (a producer reads its own topics at start and checks their config).
- `fold`: topics prefixed `P.`: read, describe (every cluster's object topics, and the
  targets topic its HTTP/file sinks read); topic `P.targets`: create, write,
  describe-configs; groups prefixed `P`: read, describe (e.g. `sdstream-consumer` for the
  default prefix `sdstream`).
- `sink`: topic `P.targets`: read, describe; and, per cluster, the monitor and Namespace
  topics (`P.<c>.servicemonitors`, `.podmonitors`, `.namespaces`): read, describe, from
  which a serving replica with a `monitors:` section derives its jobs (docs/monitors.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import IntEnum

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest

from schemas.topics import Resource as Kind
from schemas.topics import object_topic, targets_topic
from sdstream.devstack import secure
from sdstream.devstack.errors import DevstackError
from sdstream.devstack.stack import Stack


class Resource(IntEnum):  # Kafka's ResourceType codes
    TOPIC = 2
    GROUP = 3


class Pattern(IntEnum):  # PatternType
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):  # AclOperation
    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8
    DESCRIBE_CONFIGS = 10


_ALLOW = 3  # AclPermissionType.ALLOW
MONITOR_READS = (Kind.SERVICEMONITORS, Kind.PODMONITORS, Kind.NAMESPACES)


@dataclass(frozen=True)
class Binding:
    principal: str  # a user name; the ACL's principal is User:<principal>
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation


def _grant(
    principal: str, resource: Resource, name: str, pattern: Pattern, *ops: Operation
) -> list[Binding]:
    return [Binding(principal, resource, name, pattern, op) for op in ops]


def bindings(prefix: str, clusters: tuple[str, ...]) -> list[Binding]:
    """Every ACL binding for topic prefix `prefix` and the producers of `clusters`."""
    op, topic, prefixed, literal = Operation, Resource.TOPIC, Pattern.PREFIXED, Pattern.LITERAL
    targets = targets_topic(prefix)
    producing = (op.CREATE, op.WRITE, op.READ, op.DESCRIBE, op.DESCRIBE_CONFIGS)
    granted: list[Binding] = []
    for cluster in clusters:
        granted += _grant(secure.producer(cluster), topic, f"{prefix}.{cluster}.", prefixed,
                          *producing)  # fmt: skip
    granted += _grant(secure.FOLD, topic, f"{prefix}.", prefixed, op.READ, op.DESCRIBE)
    granted += _grant(secure.FOLD, topic, targets, literal,
                      op.CREATE, op.WRITE, op.DESCRIBE_CONFIGS)  # fmt: skip
    granted += _grant(secure.FOLD, Resource.GROUP, prefix, prefixed, op.READ, op.DESCRIBE)
    granted += _grant(secure.SINK, topic, targets, literal, op.READ, op.DESCRIBE)
    for cluster in clusters:  # a serving replica with `monitors:` derives its jobs itself
        for resource in MONITOR_READS:
            granted += _grant(secure.SINK, topic, object_topic(prefix, cluster, resource),
                              literal, op.READ, op.DESCRIBE)  # fmt: skip
    return granted


async def grant(stack: Stack, *, prefix: str, clusters: tuple[str, ...] | None = None) -> None:
    """Create `bindings(prefix, clusters)` on the stack's broker (default clusters: those
    the stack made producer principals for). Creating an existing ACL is a no-op."""
    chosen = tuple(stack.clusters) if clusters is None else clusters
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap, client_id="devstack")
    await admin.start()
    try:
        responses = await asyncio.gather(
            *(admin._send_request(_request(b)) for b in bindings(prefix, chosen))
        )
    finally:
        await admin.close()
    errors = {
        (code, message)
        for response in responses
        for code, message in response.creation_responses
        if code != 0
    }
    if errors:
        raise DevstackError(f"creating ACLs for prefix {prefix!r} failed: {sorted(errors)}")


def _request(binding: Binding) -> CreateAclsRequest:
    return CreateAclsRequest(
        resource_type=binding.resource,
        resource_name=binding.name,
        resource_pattern_type_filter=binding.pattern,
        principal=f"User:{binding.principal}",
        host="*",
        operation=binding.operation,
        permission_type=_ALLOW,
    )
