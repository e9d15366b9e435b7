"""Kubernetes label and field selectors: the language of `selectors[].label` and `.field`.

Why in `schemas`: the settings of both sides (`schemas.config`, `schemas.sd_config`,
`schemas.monitors`) reject a bad selector at load time, naming its path, and `schemas`
may import neither side. This module is the language: what parses, and the normal form.
Evaluating a parsed selector against labels or an object is run-time work, the
consumer's (`consumers.selectors`).

Semantics are apimachinery's (`pkg/labels/selector.go`, `pkg/fields/selector.go`) and the
API server's selectable fields per kind (`pkg/apis/core/v1/conversion.go`, the registry
strategies' `GetAttrs`):

Label selectors, comma-separated requirements that must all hold:
- `k=v`, `k==v`: k present with value v. `k!=v`: k absent, or another value.
- `k in (a,b)`: present with one of the values. `k notin (a,b)`: absent, or none of them.
- `k`: present. `!k`: absent. `k>n`, `k<n`: present and an integer above/below n
  (apimachinery parses these too, so the API server accepts them).
- Space, tab, CR and LF separate tokens. `in`/`notin` are keywords only where an
  operator is expected (`in in (in)` is valid). `k in ()` is the value set {""}, `k=` the
  value "". Keys are qualified names (`[dns-subdomain/]name`, name <= 63 characters of
  `[A-Za-z0-9._-]`, alphanumeric at both ends); values are "" or the same shape. An empty
  selector matches everything. A NUL character is rejected (Go's lexer stops there).

Field selectors, comma-separated `field=value`, `field==value`, `field!=value`:
- Nothing is trimmed (`a = b` names the field "a "). `\\` escapes `\\`, `,` and `=` in
  values; an unescaped `=` in a value is an error.
- Only the fields the API server supports for the kind (`SELECTABLE_FIELDS`); another one
  is an error here, where the server would fail every list and watch.
- Values are compared as the server formats them: booleans "true"/"false", a missing
  field "". Pods' `status.podIP` is `status.podIP`, else `status.podIPs[0].ip`;
  `status.podIPs` is accepted by the server but absent from its field set, so it is
  always ""; `spec.host` is the legacy name of `spec.nodeName`.

Parsed selectors are normalised as apimachinery prints them (label requirements sorted by
key, `in` values sorted and unique; field terms sorted, `==` printed as `=`), so
`parse(str(s)) == s`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from schemas import resources
from schemas.field_sets import FieldSet
from schemas.topics import Resource

MAX_NAME = 63
MAX_PREFIX = 253
INT64_MAX = 2**63 - 1

_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DECIMAL = re.compile(r"[0-9]+")


class SelectorError(ValueError):
    """A selector that does not parse; names the bad part and its 0-based position."""

    def __init__(self, reason: str, *, selector: str, position: int, part: str) -> None:
        self.reason = reason
        self.selector = selector
        self.position = position
        self.part = part
        super().__init__(f"{reason} at position {position} of {selector!r}")


# --- label selectors -------------------------------------------------------------------


class Operator(enum.StrEnum):
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = ">"
    LESS_THAN = "<"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One requirement; `values` is sorted and empty for `exists` and `!`."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(self.values)})"
        return f"{self.key}{op.value}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def key_problem(key: str) -> str | None:
    """Why `key` is not a qualified name (apimachinery IsQualifiedName), or None."""
    if key.count("/") > 1:
        return "a label key has at most one '/'"
    prefix, slash, name = key.rpartition("/")
    return (_prefix_problem(prefix) if slash else None) or _name_problem(name)


def _prefix_problem(prefix: str) -> str | None:
    if not prefix:
        return "the prefix before '/' is empty"
    if len(prefix) > MAX_PREFIX or not _DNS_SUBDOMAIN.fullmatch(prefix):
        return "the prefix must be a DNS subdomain (lower-case alphanumerics, '-', '.')"
    return None


def _name_problem(name: str) -> str | None:
    if not name:
        return "the name part is empty"
    if len(name) > MAX_NAME:
        return f"the name part is longer than {MAX_NAME} characters"
    if not _QUALIFIED_NAME.fullmatch(name):
        return "the name part must be alphanumerics, '-', '_' or '.', alphanumeric at both ends"
    return None


def value_problem(value: str) -> str | None:
    """Why `value` is not a label value (apimachinery IsValidLabelValue), or None."""
    if len(value) > MAX_NAME:
        return f"a label value is at most {MAX_NAME} characters"
    if value and not _QUALIFIED_NAME.fullmatch(value):
        return "a label value is '' or alphanumerics, '-', '_' or '.', alphanumeric at both ends"
    return None


class _T(enum.Enum):
    IDENT = "identifier"
    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    BANG = "!"
    GREATER = ">"
    LESS = "<"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","
    END = "end of string"


_WHITESPACE: Final = frozenset(" \t\r\n")
_SPECIAL: Final = frozenset("=!(),<>")
_WORD_END: Final = _SPECIAL | _WHITESPACE | {"\0"}
_SYMBOLS: Final = {t.value: t for t in _T if t.value and t.value[0] in _SPECIAL}
_KEYWORDS: Final = {"in": _T.IN, "notin": _T.NOT_IN}
_WORDS: Final = frozenset({_T.IDENT, _T.IN, _T.NOT_IN})  # identifiers where values go
_BINARY: Final = {
    _T.IN: Operator.IN,
    _T.NOT_IN: Operator.NOT_IN,
    _T.EQUALS: Operator.EQUALS,
    _T.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _T.NOT_EQUALS: Operator.NOT_EQUALS,
    _T.GREATER: Operator.GREATER_THAN,
    _T.LESS: Operator.LESS_THAN,
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _T
    text: str
    pos: int


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        if pos == len(text):
            tokens.append(_Token(_T.END, "", pos))
            return tokens
        token = _lex_one(text, pos)
        tokens.append(token)
        pos += len(token.text)


def _lex_one(text: str, pos: int) -> _Token:
    if text[pos] == "\0":
        raise SelectorError("NUL character", selector=text, position=pos, part="\\0")
    if text[pos] in _SPECIAL:
        symbol = text[pos : pos + 2] if text[pos : pos + 2] in _SYMBOLS else text[pos]
        return _Token(_SYMBOLS[symbol], symbol, pos)
    end = pos
    while end < len(text) and text[end] not in _WORD_END:
        end += 1
    word = text[pos:end]
    return _Token(_KEYWORDS.get(word, _T.IDENT), word, pos)


class _LabelParser:
    """Recursive descent over apimachinery's grammar, keeping token positions for errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.at = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        self.at += 1
        return self.tokens[self.at - 1]

    def fail(self, token: _Token, reason: str) -> SelectorError:
        return SelectorError(reason, selector=self.text, position=token.pos, part=token.text)

    def expected(self, token: _Token, what: str) -> SelectorError:
        found = repr(token.text) if token.text else "end of string"
        return self.fail(token, f"found {found}, expected {what}")

    def parse(self) -> LabelSelector:
        requirements: list[Requirement] = []
        if self.peek().kind is _T.END:
            return LabelSelector()
        if self.peek().kind not in _WORDS | {_T.BANG}:
            raise self.expected(self.peek(), "'!', an identifier or end of string")
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token.kind is _T.END:
                requirements.sort(key=lambda r: r.key)  # by key, as apimachinery prints them
                return LabelSelector(tuple(requirements))
            if token.kind is not _T.COMMA:
                raise self.expected(token, "',' or end of string")
            if self.peek().kind not in _WORDS | {_T.BANG}:
                raise self.expected(self.peek(), "an identifier after ','")

    def requirement(self) -> Requirement:
        negated = self.peek().kind is _T.BANG
        if negated:
            self.take()
        key = self.take()
        if key.kind not in _WORDS:
            raise self.expected(key, "an identifier")
        if problem := key_problem(key.text):
            raise self.fail(key, f"invalid label key {key.text!r}: {problem}")
        if negated:
            return Requirement(key.text, Operator.DOES_NOT_EXIST)
        if self.peek().kind in (_T.END, _T.COMMA):
            return Requirement(key.text, Operator.EXISTS)
        op_token = self.take()
        operator = _BINARY.get(op_token.kind)
        if operator is None:
            raise self.expected(op_token, "one of in, notin, =, ==, !=, >, <")
        if operator in (Operator.IN, Operator.NOT_IN):
            return Requirement(key.text, operator, self.value_set())
        return Requirement(key.text, operator, (self.exact_value(operator),))

    def exact_value(self, operator: Operator) -> str:
        if self.peek().kind in (_T.END, _T.COMMA):
            value = _Token(_T.IDENT, "", self.peek().pos)
        else:
            value = self.take()
            if value.kind not in _WORDS:
                raise self.expected(value, "a value")
        self.check_value(value)
        if operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
            number = int(value.text) if _DECIMAL.fullmatch(value.text) else None
            if number is None or number > INT64_MAX:
                reason = f"'{operator.value}' needs a 64-bit integer, not {value.text!r}"
                raise self.fail(value, reason)
        return value.text

    def value_set(self) -> tuple[str, ...]:
        """`(a,b)`; empty entries (`()`, `(,a)`, `(a,,b)`, `(a,)`) stand for the value ""."""
        opening = self.take()
        if opening.kind is not _T.OPEN:
            raise self.expected(opening, "'('")
        if self.peek().kind is _T.CLOSE:
            self.take()
            return ("",)
        if self.peek().kind not in _WORDS | {_T.COMMA}:
            raise self.expected(self.peek(), "',', ')' or a value")
        values = self.value_list()
        self.take()  # value_list stops before ")"
        return tuple(sorted(values))

    def value_list(self) -> set[str]:
        """apimachinery's list rule, quirks included: `(a,,)` fails where `(a,,,)` parses."""
        values: set[str] = set()
        while True:
            token = self.take()
            if token.kind in _WORDS:
                self.check_value(token)
                values.add(token.text)
                if self.peek().kind is _T.CLOSE:
                    return values
                if self.peek().kind is not _T.COMMA:
                    raise self.expected(self.peek(), "',' or ')'")
                continue
            if token.kind is not _T.COMMA:
                raise self.expected(token, "',' or a value")
            if not values or self.peek().kind is _T.CLOSE:  # "(," and ",)"
                values.add("")
            if self.peek().kind is _T.CLOSE:
                return values
            if self.peek().kind is _T.COMMA:
                self.take()
                values.add("")

    def check_value(self, token: _Token) -> None:
        if problem := value_problem(token.text):
            raise self.fail(token, f"invalid label value {token.text!r}: {problem}")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector; `SelectorError` names the bad part and its position."""
    return _LabelParser(text).parse()


# --- field selectors -------------------------------------------------------------------


class FieldOperator(enum.StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="


@dataclass(frozen=True, slots=True, order=True)
class FieldTerm:
    field: str
    operator: FieldOperator
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator.value}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """Terms on one kind's selectable fields."""

    kind: Resource
    terms: tuple[FieldTerm, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


FIELD_SETS: Final[Mapping[Resource, FieldSet]] = {
    r: row.fields for r, row in resources.ROWS.items() if row.fields is not None
}
SELECTABLE_FIELDS: Final[Mapping[Resource, frozenset[str]]] = {
    kind: frozenset(getters) for kind, getters in FIELD_SETS.items()
}
FIELD_ALIASES: Final[Mapping[Resource, Mapping[str, str]]] = {
    Resource.PODS: {"spec.host": "spec.nodeName"}
}


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_terms(text: str) -> Iterator[tuple[int, str]]:
    """(offset, term) at unescaped commas; escapes stay in the term."""
    start, escaped = 0, False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            yield start, text[start:index]
            start = index + 1
    yield start, text[start:]


def _split_term(term: str) -> tuple[str, FieldOperator, int] | None:
    """(field, operator, value offset) at the first `!=`, `==` or `=`."""
    for index in range(len(term)):
        for symbol in ("!=", "==", "="):
            if term.startswith(symbol, index):
                operator = FieldOperator.NOT_EQUALS if symbol == "!=" else FieldOperator.EQUALS
                return term[:index], operator, index + len(symbol)
    return None


def _unescape(raw: str, *, fail: Callable[[int, str, str], SelectorError]) -> str:
    out: list[str] = []
    escaped = False
    for index, char in enumerate(raw):
        if escaped:
            if char not in "\\,=":
                sequence = "\\" + char
                raise fail(index - 1, sequence, f"invalid escape sequence {sequence!r}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=":
            raise fail(index, char, "unescaped '=' in a value (write '\\=')")
        else:
            out.append(char)
    if escaped:
        raise fail(len(raw) - 1, "\\", "a value cannot end with a single '\\'")
    return "".join(out)


def parse_field_selector(text: str, *, kind: Resource) -> FieldSelector:
    """Parse a field selector for `kind`; unknown fields are errors naming the field."""
    if kind not in FIELD_SETS:
        raise SelectorError(
            f"no field selectors on {kind.value}", selector=text, position=0, part=text
        )
    terms = [_parse_term(text, start, term, kind) for start, term in _split_terms(text) if term]
    return FieldSelector(kind, tuple(sorted(terms)))


def _parse_term(text: str, start: int, term: str, kind: Resource) -> FieldTerm:
    def fail(offset: int, part: str, reason: str) -> SelectorError:
        return SelectorError(reason, selector=text, position=start + offset, part=part)

    split = _split_term(term)
    if split is None:
        raise fail(0, term, f"{term!r} is not field=value, field==value or field!=value")
    field, operator, value_at = split
    field = FIELD_ALIASES.get(kind, {}).get(field, field)
    if field not in FIELD_SETS[kind]:
        supported = ", ".join(sorted(FIELD_SETS[kind]))
        raise fail(0, field, f"field {field!r} is not selectable on {kind.value} ({supported})")
    value = _unescape(term[value_at:], fail=lambda at, part, why: fail(value_at + at, part, why))
    return FieldTerm(field, operator, value)
