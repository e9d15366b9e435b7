"""OAUTHBEARER with a token file, and create_topics: the combinations refused at load (one
line naming the fields), the accepted ones, and a token that is never shown and is read
again at each authentication."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest

from kafka_access import kafka_options
from schemas.config import KafkaSettings, kafka_inconsistency
from sdstream import settings

TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJwcm9kdWNlci1hIn0."
OAUTH = {"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (OAUTH, ["OAUTHBEARER needs sasl_oauth_token_file"]),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER"},
         ["SASL_PLAINTEXT with OAUTHBEARER needs sasl_oauth_token_file"]),
        (OAUTH | {"sasl_oauth_token_file": "/t", "sasl_username": "u"},
         ["sasl_username set with sasl_mechanism OAUTHBEARER", "unset them"]),
        (OAUTH | {"sasl_oauth_token_file": "/t", "sasl_password_file": "/p"},
         ["sasl_password_file set with sasl_mechanism OAUTHBEARER"]),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u",
          "sasl_password": "p", "sasl_oauth_token_file": "/t"},
         ["sasl_oauth_token_file set but sasl_mechanism is PLAIN: use OAUTHBEARER"]),
        ({"sasl_oauth_token_file": "/t"}, ["sasl_oauth_token_file set but security_protocol is "
                                           "PLAINTEXT"]),
        ({"security_protocol": "SSL", "sasl_mechanism": "OAUTHBEARER",
          "sasl_oauth_token_file": "/t"}, ["sasl_mechanism, sasl_oauth_token_file", "SSL"]),
    ],
)  # fmt: skip
def test_an_inconsistent_oauth_combination_is_refused_naming_the_fields(
    fields: dict[str, Any], named: list[str]
) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        KafkaSettings.model_validate(fields)
    (error,) = caught.value.errors()
    for part in named:
        assert part in error["msg"]
    assert "\n" not in error["msg"]


@pytest.mark.parametrize(
    "fields",
    [
        OAUTH | {"sasl_oauth_token_file": "/t"},
        OAUTH | {"sasl_oauth_token_file": "/t", "ssl_cafile": "/ca", "create_topics": False},
        {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
         "sasl_oauth_token_file": "/t"},
        {"create_topics": False},
    ],
)  # fmt: skip
def test_a_consistent_combination_is_accepted(fields: dict[str, Any]) -> None:
    assert kafka_inconsistency(KafkaSettings.model_validate(fields)) is None


def test_create_topics_defaults_to_true() -> None:
    assert KafkaSettings().create_topics is True


async def test_the_token_is_read_at_each_authentication_and_never_shown(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
        sasl_oauth_token_file=token,
    )  # fmt: skip
    options = kafka_options.client_options(kafka)
    provider = options["sasl_oauth_token_provider"]
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert "sasl_plain_password" not in options
    assert await provider.token() == TOKEN
    token.write_text("rotated.token.\n")
    assert await provider.token() == "rotated.token."  # the next connection's token
    assert TOKEN not in repr(provider)
    assert TOKEN not in repr(kafka)
    assert TOKEN not in kafka.model_dump_json()


def test_other_mechanisms_get_no_token_provider() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_username="u", sasl_password="p")  # fmt: skip
    assert "sasl_oauth_token_provider" not in kafka_options.client_options(kafka)


@pytest.mark.parametrize(("content", "named"), [(None, "nope"), ("\n", "is empty")])
def test_a_missing_or_empty_token_file_is_one_line_at_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None, named: str
) -> None:
    path = tmp_path / "nope"
    if content is not None:
        path.write_text(content)
    for name, value in (OAUTH | {"sasl_oauth_token_file": str(path)}).items():
        monkeypatch.setenv(f"SDSTREAM_KAFKA_{name.upper()}", value)
    with pytest.raises(settings.SettingsError) as caught:
        settings.load(settings.ConsumerAppSettings)
    message = str(caught.value)
    assert message.startswith(f"kafka.sasl_oauth_token_file: {path}")
    assert named in message
    assert "\n" not in message
