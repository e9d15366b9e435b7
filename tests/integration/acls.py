"""ACLs changed while a test runs, through the super-user PLAINTEXT listener: an operator's
mistake (a DENY, or an ALLOW removed) and its fix, on a topic or group prefix."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest

from sdstream.devstack.kafka_acls import Operation, Pattern, Resource

DENY = 2  # AclPermissionType
ALLOW = 3


async def _send(bootstrap: str, request: CreateAclsRequest | DeleteAclsRequest) -> object:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin._send_request(request)
    finally:
        await admin.close()


async def deny(
    bootstrap: str, principal: str, prefix: str, operation: Operation = Operation.READ,
    resource: Resource = Resource.TOPIC,
) -> None:  # fmt: skip
    """A DENY `operation` ACL for `principal` on `resource`s prefixed `prefix`."""
    response = await _send(bootstrap, CreateAclsRequest(
        resource_type=resource, resource_name=prefix, resource_pattern_type_filter=Pattern.PREFIXED,
        principal=f"User:{principal}", host="*", operation=operation, permission_type=DENY,
    ))  # fmt: skip
    assert all(code == 0 for code, _ in response.creation_responses), response  # type: ignore[attr-defined]


async def allow(
    bootstrap: str, principal: str, prefix: str, operation: Operation = Operation.READ,
    resource: Resource = Resource.TOPIC,
) -> None:  # fmt: skip
    """An ALLOW `operation` ACL for `principal` on `resource`s prefixed `prefix`."""
    response = await _send(bootstrap, CreateAclsRequest(
        resource_type=resource, resource_name=prefix, resource_pattern_type_filter=Pattern.PREFIXED,
        principal=f"User:{principal}", host="*", operation=operation, permission_type=ALLOW,
    ))  # fmt: skip
    assert all(code == 0 for code, _ in response.creation_responses), response  # type: ignore[attr-defined]


async def undeny(
    bootstrap: str, principal: str, prefix: str, operation: Operation = Operation.READ,
    resource: Resource = Resource.TOPIC,
) -> None:  # fmt: skip
    """Remove what `deny` added: the operator fixes the mistake."""
    await _remove(bootstrap, principal, prefix, operation, resource, DENY)


async def revoke(
    bootstrap: str, principal: str, name: str, operation: Operation,
    resource: Resource = Resource.TOPIC, pattern: Pattern = Pattern.LITERAL,
) -> None:  # fmt: skip
    """Remove an ALLOW ACL `kafka_acls.grant` made (e.g. the fold's WRITE on its targets)."""
    await _remove(bootstrap, principal, name, operation, resource, ALLOW, pattern)


async def _remove(  # noqa: PLR0917 - one ACL binding's fields
    bootstrap: str, principal: str, name: str, operation: Operation, resource: Resource,
    permission: int, pattern: Pattern = Pattern.PREFIXED,
) -> None:  # fmt: skip
    response = await _send(bootstrap, DeleteAclsRequest(
        resource_type=resource, resource_name=name, resource_pattern_type_filter=pattern,
        principal=f"User:{principal}", host="*", operation=operation, permission_type=permission,
    ))  # fmt: skip
    results = response.filter_responses  # type: ignore[attr-defined]
    assert all(result[0] == 0 and result[2] for result in results), response
