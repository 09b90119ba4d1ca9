"""The shape of the code: the longest files and functions, and the core crate's module graph
with any import circle. Run `python scripts/house.py` (add `--json` for machine use);
`tests/test_house.py` keeps the core free of circles.

Rust is read as text: a function runs from its `fn` line to the brace that closes it (braces
inside strings, chars and comments are skipped); a module imports another when its code names
`crate::a::b` or `super::x` outside its `#[cfg(test)]` module. Python functions come from `ast`.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "rust" / "ferrovec-core" / "src"
SOURCES = [ROOT / "rust", ROOT / "python" / "ferrovec", ROOT / "benches"]
SKIP_PARTS = {"target", "corpus", "regressions", "tests", "fuzz_targets"}

FN_RE = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)"
)
PATH_RE = re.compile(r"\b(crate|super)((?:::\w+)+)")
USE_GROUP_RE = re.compile(r"\buse\s+(crate|super)((?:::\w+)*)::\{([^;]*)\}", re.S)


def source_files() -> list[Path]:
    out = []
    for base in SOURCES:
        for p in sorted(base.rglob("*")):
            if p.suffix not in (".rs", ".py") or not p.is_file():
                continue
            if SKIP_PARTS & set(p.relative_to(ROOT).parts):
                continue
            out.append(p)
    return out


def strip_rust(text: str) -> str:
    """The code with comments, strings and char literals blanked (newlines kept)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == '"' or (c == "r" and re.match(r'r#*"', text[i:])):
            m = re.match(r'r(#*)"', text[i:])
            if m:
                end = '"' + m.group(1)
                j = text.find(end, i + len(m.group(0)))
                j = n if j < 0 else j + len(end)
            else:
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                j += 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i : i + 4]):
            m = re.match(r"'(\\.|[^\\'])'", text[i : i + 4])
            i += len(m.group(0)) if m else 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_tests(code: str) -> str:
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", code)
    return code[: m.start()] if m else code


def rust_functions(path: Path) -> list[tuple[str, int, int]]:
    """(name, first line, lines) of every function in a Rust file."""
    lines = strip_rust(path.read_text()).split("\n")
    found = []
    for start, line in enumerate(lines):
        m = FN_RE.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for end in range(start, len(lines)):
            for ch in lines[end]:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
            if opened and depth <= 0:
                found.append((m.group(1), start + 1, end - start + 1))
                break
            if not opened and lines[end].rstrip().endswith(";"):
                break  # a declaration without a body (in a trait)
    return found


def python_functions(path: Path) -> list[tuple[str, int, int]]:
    tree = ast.parse(path.read_text())
    return [
        (node.name, node.lineno, (node.end_lineno or node.lineno) - node.lineno + 1)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]


def module_of(path: Path) -> tuple[str, ...]:
    rel = path.relative_to(CORE).with_suffix("")
    parts = tuple(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return parts


def core_graph() -> dict[str, set[str]]:
    """File → the core files it names (relative to the core's src/)."""
    files = {module_of(p): p for p in CORE.rglob("*.rs")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        code = without_tests(strip_rust(path.read_text()))
        uses: set[tuple[str, ...]] = set()
        # `use crate::a::{b, c::D}` names crate::a::b and crate::a::c
        for m in USE_GROUP_RE.finditer(code):
            head = resolve(mod, path, m.group(1), m.group(2))
            for item in re.split(r"[,\s]+", re.sub(r"\{[^}]*\}", "", m.group(3))):
                item = item.strip()
                if item and item not in ("self", "*"):
                    uses.add(head + tuple(item.split("::")[0:1]))
            uses.add(head)
        for m in PATH_RE.finditer(code):
            uses.add(resolve(mod, path, m.group(1), m.group(2)))
        targets = set()
        for target in uses:
            while target and target not in files:
                target = target[:-1]
            if target and target != mod:
                targets.add(str(files[target].relative_to(CORE)))
        graph[str(path.relative_to(CORE))] = targets
    return graph


def resolve(mod: tuple[str, ...], path: Path, root: str, rest: str) -> tuple[str, ...]:
    names = tuple(x for x in rest.split("::") if x)
    if root == "crate":
        return names
    # super:: of a file that is itself a module folder's mod.rs is its parent's module.
    parent = mod[:-1]
    while names and names[0] == "super":
        parent, names = parent[:-1], names[1:]
    return parent + names


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one file (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def report(top: int) -> dict[str, object]:
    files = source_files()
    lengths = sorted(
        ((len(p.read_text().splitlines()), str(p.relative_to(ROOT))) for p in files),
        reverse=True,
    )
    functions = []
    for p in files:
        funcs = rust_functions(p) if p.suffix == ".rs" else python_functions(p)
        rel = str(p.relative_to(ROOT))
        functions += [(n, f"{rel}:{line}", name) for name, line, n in funcs]
    functions.sort(reverse=True)
    graph = core_graph()
    return {
        "longest_files": [{"lines": n, "file": f} for n, f in lengths[:top]],
        "files_over_700": sum(1 for n, _ in lengths if n > 700),
        "longest_functions": [
            {"lines": n, "at": at, "name": name} for n, at, name in functions[:top]
        ],
        "functions_over_100": sum(1 for n, _, _ in functions if n > 100),
        "core_import_circles": circles(graph),
        "core_graph": {k: sorted(v) for k, v in sorted(graph.items())},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = report(args.top)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"longest files ({r['files_over_700']} over 700 lines):")
    for row in r["longest_files"]:  # type: ignore[attr-defined]
        print(f"  {row['lines']:5}  {row['file']}")
    print(f"longest functions ({r['functions_over_100']} over 100 lines):")
    for row in r["longest_functions"]:  # type: ignore[attr-defined]
        print(f"  {row['lines']:5}  {row['name']}  {row['at']}")
    cs = r["core_import_circles"]
    print(f"core import circles: {len(cs) if cs else 'none'}")  # type: ignore[arg-type]
    for c in cs:  # type: ignore[attr-defined]
        print("  " + " <-> ".join(c))


if __name__ == "__main__":
    main()
