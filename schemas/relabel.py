"""A `relabel_configs` rule as Prometheus loads it: defaults, null handling, validation.

A user pastes a Prometheus job; its rules must be accepted and rejected exactly where
Prometheus would (model/relabel/relabel.go at v3.14: `Config.UnmarshalYAML`, `Validate`),
with Prometheus's own error texts, so the job that loads here loads there. What each
field means and why is in docs/relabeling.md; in short:

- Absent keys take Prometheus's defaults (`separator: ";"`, `regex: (.*)`,
  `replacement: $1`, `action: replace`). A YAML null (`key:`) is Go's zero value: empty
  strings, modulus 0, `regex` that matches only "" and `source_labels` absent.
- `regex` absent is "the default regex object": Prometheus compares that object (not its
  text) in two places, so `regex: (.*)` written out is not the default here either.
- Regexes are RE2 (google-re2, the C++ library Go's syntax follows), compiled anchored as
  `^(?s:<regex>)$`, textually, as Prometheus does. `\\C` (any byte), which Go rejects and
  RE2 accepts, is rejected before compiling.
- Label names use Prometheus 3's UTF-8 scheme: any non-empty string.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Final

import re2
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

ACTIONS: Final = ("replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap",
                  "labeldrop", "labelkeep", "lowercase", "uppercase")  # fmt: skip
DEFAULT_REGEX: Final = "(.*)"
DEFAULT_SEPARATOR: Final = ";"
DEFAULT_REPLACEMENT: Final = "$1"
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print every parse error on stderr


def go_quote(text: str) -> str:
    """Go's %q for the texts in Prometheus's messages (double quotes, backslash escapes)."""
    return json.dumps(text, ensure_ascii=False)


def anchored(regex: str) -> str:
    """The text Prometheus compiles: wrapped textually, so `a)|(b` stays two branches."""
    return f"^(?s:{regex})$"


def compile_regex(regex: str) -> Any:
    """The compiled, anchored RE2 program (UTF-8 mode), to match UTF-8 encoded bytes: the
    binding's `str` path converts every offset back to characters, twice the cost of the
    match itself. ValueError with the parse error."""
    if _has_any_byte(regex):
        raise ValueError(r"error parsing regexp: invalid escape sequence: `\C`")
    try:
        return re2.compile(anchored(regex).encode(), _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        raise ValueError(f"error parsing regexp: {text}") from None


def _has_any_byte(regex: str) -> bool:
    r"""Whether `\C` appears as an escape outside a class and outside `\Q...\E`."""
    return any(regex.startswith("\\C", i) for i in syntax_points(regex))


def syntax_points(regex: str) -> Iterator[int]:
    r"""Where an RE2 pattern's text has an escape (`\x`) or a `(` that is syntax: outside
    character classes and `\Q...\E` quoting. One walk for the checks here and for
    reading capture group names (`consumers.relabel.expand`)."""
    i, in_class = 0, False
    while i < len(regex):
        if regex.startswith("\\Q", i):
            end = regex.find("\\E", i + 2)
            i = len(regex) if end < 0 else end + 2
        elif regex[i] == "\\":
            if not in_class:
                yield i
            i += 2
        elif in_class:
            end = regex.find(":]", i + 2) if regex.startswith("[:", i) else -1
            in_class = end >= 0 or regex[i] != "]"
            i = end + 2 if end >= 0 else i + 1
        elif regex[i] == "[":
            in_class = True
            i += 1
            i += regex.startswith("^", i)
            i += regex.startswith("]", i)  # a leading ] is literal
        else:
            if regex[i] == "(":
                yield i
            i += 1


def _relabel_error(message: str) -> PydanticCustomError:
    """Prometheus's text, verbatim: pydantic would prefix "Value error, "."""
    return PydanticCustomError("relabel_config", "{message}", {"message": message})


def _zero(zero: object) -> BeforeValidator:
    return BeforeValidator(lambda value: zero if value is None else value)


class RelabelConfig(BaseModel):
    """One `<relabel_config>`. Field names, defaults and errors are Prometheus's."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    source_labels: tuple[str, ...] | None = Field(
        None, description="Labels whose values, joined by `separator`, are matched"
    )
    separator: Annotated[str, _zero("")] = DEFAULT_SEPARATOR
    regex: Annotated[str | None, _zero("")] = Field(
        None, description="RE2, anchored at both ends; absent: (.*)"
    )
    modulus: Annotated[int, _zero(0)] = Field(0, ge=0, le=2**64 - 1)
    target_label: Annotated[str, _zero("")] = ""
    replacement: Annotated[str, _zero("")] = DEFAULT_REPLACEMENT
    action: str | None = Field(
        "replace", description="One of " + ", ".join(ACTIONS) + " (any case)"
    )

    @field_validator("source_labels")
    @classmethod
    def _names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and "" in value:
            raise _relabel_error('"" is not a valid label name')
        return value

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_regex(value)
            except ValueError as exc:
                raise _relabel_error(str(exc)) from None
        return value

    @field_validator("action")
    @classmethod
    def _action(cls, value: str | None) -> str | None:
        if value is None:  # YAML null: Go's zero value, reported by Validate
            return value
        if value.lower() not in ACTIONS:
            raise _relabel_error(f"unknown relabel action {go_quote(value)}")
        return value.lower()

    @model_validator(mode="after")
    def _validate(self) -> RelabelConfig:
        problem = validate(self)
        if problem:
            raise _relabel_error(problem)
        return self

    @property
    def regex_text(self) -> str:
        return DEFAULT_REGEX if self.regex is None else self.regex

    @property
    def default_regex(self) -> bool:
        """Prometheus's default regex *object*: absent, not `(.*)` written out."""
        return self.regex is None


def validate(c: RelabelConfig) -> str | None:
    """relabel.go `Config.Validate`, check by check, first failure wins."""
    a, t = c.action or "", c.target_label
    needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
    plain_target = ("lowercase", "uppercase", "keepequal", "dropequal")
    checks = (
        (c.action is None, "relabel action cannot be empty"),
        (a == "hashmod" and c.modulus == 0,
         "relabel configuration for hashmod requires non-zero modulus"),
        (a in needs_target and t == "",
         f"relabel configuration for {a} action requires 'target_label' value"),
        (a in plain_target and c.replacement != DEFAULT_REPLACEMENT,
         f"'replacement' can not be set for {a} action"),
        (a == "labelmap" and c.replacement == "",
         f"{go_quote(c.replacement)} is invalid 'replacement' for {a} action"),
        (a in ("keepequal", "dropequal") and (
            not c.default_regex or c.modulus != 0 or c.separator != DEFAULT_SEPARATOR
            or c.replacement != DEFAULT_REPLACEMENT),
         f"{a} action requires only 'source_labels' and `target_label`, and no other fields"),
        (a in ("labeldrop", "labelkeep") and (
            c.source_labels is not None or t != "" or c.modulus != 0
            or c.separator != DEFAULT_SEPARATOR or c.replacement != DEFAULT_REPLACEMENT),
         f"{a} action requires only 'regex', and no other fields"),
    )  # fmt: skip
    # Under the UTF-8 scheme every non-empty string is a valid label name (and a valid
    # template), so Validate's name checks (replace, lowercase..., hashmod, labelmap's
    # replacement) come down to "non-empty"; only labelmap's is not covered above.
    return next((message for failed, message in checks if failed), None)
