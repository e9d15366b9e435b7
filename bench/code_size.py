"""Module and function size of the product code (median / p90 / max lines), so each
session can say whether a refactor made the code smaller or only moved it (issue 15).

Product code is the packages that ship: schemas, producers, consumers, sdstream,
lifecycle. A module's size is its physical line count; a function's size is the lines
from its `def` (decorators excluded) to its last line, nested functions counted on their
own as well as inside their parent. Run it on any checkout, e.g. on a commit:

    git worktree add /tmp/at-rev <rev> && .venv/bin/python bench/code_size.py --root /tmp/at-rev
"""

from __future__ import annotations

import argparse
import ast
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path

PACKAGES = ("schemas", "producers", "consumers", "sdstream", "lifecycle")


def python_files(root: Path) -> list[Path]:
    """Every .py file of the product packages under `root`, sorted."""
    return sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))


def function_sizes(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(name, lines) of every function and method in a parsed module."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            end = node.end_lineno if node.end_lineno is not None else node.lineno
            yield node.name, end - node.lineno + 1


def percentile(values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile (a value that occurs in the data)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return ordered[int(rank) - 1]


def summary(values: Sequence[int]) -> str:
    return (
        f"n={len(values)} median={statistics.median(values):g} "
        f"p90={percentile(values, 0.9)} max={max(values)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--top", type=int, default=5, help="largest modules/functions to list")
    args = parser.parse_args()
    modules: dict[str, int] = {}
    functions: list[tuple[str, int]] = []
    for path in python_files(args.root):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(args.root))
        modules[name] = len(text.splitlines())
        functions += [(f"{name}:{f}", n) for f, n in function_sizes(ast.parse(text))]
    print(f"modules   (lines): {summary(list(modules.values()))}")
    print(f"functions (lines): {summary([n for _, n in functions])}")
    for name, n in sorted(modules.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  module   {n:5d}  {name}")
    for name, n in sorted(functions, key=lambda item: -item[1])[: args.top]:
        print(f"  function {n:5d}  {name}")


if __name__ == "__main__":
    main()
