"""Go's `Regexp.ExpandString`: `$1`, `${1}`, `$name`, `${name}` and `$$` in templates.

Python's RE2 binding expands with Python's syntax (`\\1`, `\\g<name>`), so Prometheus's
`$` templates are expanded here, rule for rule as Go's regexp `expand`/`extract` do
(docs/relabeling.md §3): a name is the longest run of letters, decimal digits and `_`;
all digits without a leading zero is a group number; a malformed reference is copied
as is; `$name` is the first group of that name that took part in the match.

Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.relabel import syntax_points

Groups = Sequence[str | None]  # each group's text, None when it took no part; 0 first
_MAX_NUMBER = 10**8  # Go stops reading a number here: the reference becomes a name


def _name_char(char: str) -> bool:
    """Go's unicode.IsLetter || unicode.IsDigit || '_' (categories L*, Nd)."""
    return char.isalpha() or char.isdecimal() or char == "_"


def _extract(template: str, at: int) -> tuple[str, int] | None:
    """The reference starting at `template[at]` (just after `$`): its name and where the
    template goes on; None when malformed."""
    brace = template.startswith("{", at)
    start = end = at + brace
    while end < len(template) and _name_char(template[end]):
        end += 1
    if end == start:
        return None
    if brace:
        if not template.startswith("}", end):
            return None
        return template[start:end], end + 1
    return template[start:end], end


def _number(name: str) -> int:
    """The group number `name` stands for, or -1 for a name."""
    num = 0
    for char in name:
        if not "0" <= char <= "9" or num >= _MAX_NUMBER:
            return -1
        num = num * 10 + ord(char) - ord("0")
    return -1 if name[0] == "0" and len(name) > 1 else num


def expand(template: str, groups: Groups, names: Sequence[str | None]) -> str:
    """`template` with references to a match's `groups`; `names[i]` is group i's name,
    None when unnamed."""
    if "$" not in template:
        return template
    out: list[str] = []
    i = 0
    while True:
        dollar = template.find("$", i)
        if dollar < 0:
            break
        out.append(template[i:dollar])
        i = dollar + 1
        if template.startswith("$", i):
            out.append("$")
            i += 1
            continue
        ref = _extract(template, i)
        if ref is None:
            out.append("$")
            continue
        name, i = ref
        out.append(_group(name, groups, names))
    out.append(template[i:])
    return "".join(out)


def _group(name: str, groups: Groups, names: Sequence[str | None]) -> str:
    num = _number(name)
    if num < 0:
        num = next(
            (j for j, n in enumerate(names) if n == name and groups[j] is not None), len(groups)
        )
    found = groups[num] if num < len(groups) else None
    return found or ""


def group_names(anchored: str, groups: int) -> list[str | None]:
    """Each capturing group's name, index 0 (the whole match) first, read from the pattern
    text: RE2's `groupindex` keeps one index per name, while Go allows a name twice and
    `$name` takes the first group of that name that matched."""
    names: list[str | None] = [None]
    for i in syntax_points(anchored):
        if len(names) > groups:
            break
        if anchored[i] == "(":
            names += _capture(anchored, i + 1)
    return names + [None] * (groups + 1 - len(names))


def _capture(pattern: str, at: int) -> list[str | None]:
    """What the `(` before `pattern[at]` opens: [name] or [None] for a capturing group,
    [] for a non-capturing one or flags."""
    for prefix in ("?P<", "?<"):
        if pattern.startswith(prefix, at):
            end = pattern.find(">", at)
            return [pattern[at + len(prefix) : end]]
    return [] if pattern.startswith("?", at) else [None]
