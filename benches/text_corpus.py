"""A real text corpus found on every Debian machine: the man pages in /usr/share/man (troff
stripped to plain text), and Python's standard-library docstrings. Used by bench_hybrid.py
(chunks of ~800 characters) and bench_retrieval.py (known-item queries).

- `man_pages()`: (name, one-line description, body) per page, sorted by file, the NAME line
  taken out of the body (so a query made of it is not a verbatim copy of the text).
- `docstrings()`: (qualified name, first line, the rest) for stdlib functions and classes.
- `chunks(n, size)`: the first `n` chunks of `size` characters of all man pages (cut at
  whitespace), for speed benchmarks.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

MAN = Path("/usr/share/man")
_ESCAPES = re.compile(
    r"\\[nf*]\[[^]]*\]|\\[nf*]\(..|\\[nf*].|\\\(..|\\s[-+]?\d|\\[&|^%e0 -]|\\\"|\\"
)
_SIGNATURE = re.compile(r"^[\w.]+\(")


def _text(troff: str) -> tuple[str, str]:
    """(NAME description, body text) of a man page's troff source."""
    lines, name_desc, in_name = [], "", False
    for raw in troff.splitlines():
        if raw.startswith(("'", '.\\"')):
            continue
        if raw.startswith(".SH"):
            in_name = raw[3:].strip().strip('"').upper() in ("NAME", "NOMBRE", "NOM")
            continue
        if raw.startswith("."):
            words = raw.split(None, 1)
            # Macros that carry text (.B, .I, .BR, .IP "...", .TP …) keep their arguments.
            if len(words) == 2 and words[0] in (
                ".B",
                ".I",
                ".BR",
                ".BI",
                ".IB",
                ".RB",
                ".IR",
                ".RI",
                ".IP",
            ):
                raw = words[1].replace('"', "")
            else:
                continue
        line = _ESCAPES.sub("", raw.replace("\\-", "-")).strip()
        if not line:
            continue
        if in_name:
            name_desc = f"{name_desc} {line}".strip()
        else:
            lines.append(line)
    desc = name_desc.split(" - ", 1)[-1].split(" \\- ", 1)[-1].strip()
    return desc, " ".join(lines)


def man_pages(
    limit: int | None = None, sections: str = "18", keep_name: bool = False, strict: bool = True
) -> Iterator[tuple[str, str, str]]:
    """(page name, description, body) of English man pages of `sections`, sorted; with
    `keep_name`, the body starts with the NAME line ("ls - list directory contents"), as the
    page is installed. `strict` skips pages without a NAME description of 3+ words or 400+
    characters of text (not wanted as known-item queries)."""
    count = 0
    seen: set[int] = set()
    for sec in sections:
        for f in sorted((MAN / f"man{sec}").glob("*.gz")):
            try:
                troff = gzip.decompress(f.read_bytes()).decode("utf-8", "replace")
            except OSError:
                continue
            if troff.startswith(".so "):  # a page that only includes another
                continue
            desc, body = _text(troff)
            short = len(desc.split()) < 3 or len(body) < 400
            if (strict and short) or not body or hash(body) in seen:
                continue
            seen.add(hash(body))  # pages installed under several names (GET, HEAD, POST)
            name = f.name.removesuffix(".gz")
            if keep_name:
                body = f"{name.rsplit('.', 1)[0]} - {desc}. {body}"
            yield name, desc, body
            count += 1
            if limit is not None and count >= limit:
                return


_MODULES = [
    "os",
    "os.path",
    "shutil",
    "subprocess",
    "json",
    "re",
    "pathlib",
    "itertools",
    "functools",
    "collections",
    "datetime",
    "random",
    "statistics",
    "math",
    "string",
    "textwrap",
    "tarfile",
    "zipfile",
    "gzip",
    "csv",
    "socket",
    "threading",
    "asyncio",
    "logging",
    "argparse",
    "email",
    "http.client",
    "urllib.parse",
    "sqlite3",
    "hashlib",
    "inspect",
    "ast",
    "tokenize",
    "difflib",
    "heapq",
    "bisect",
    "uuid",
    "tempfile",
    "glob",
    "fnmatch",
    "unittest",
    "doctest",
    "pickle",
    "copy",
    "pprint",
    "decimal",
    "fractions",
    "calendar",
    "time",
    "locale",
    "codecs",
    "io",
    "struct",
    "array",
    "queue",
    "sched",
    "selectors",
    "signal",
    "mmap",
    "ctypes",
    "xml.dom.minidom",
    "html.parser",
    "configparser",
    "platform",
    "sysconfig",
    "typing",
    "dataclasses",
    "enum",
    "contextlib",
    "abc",
    "numbers",
    "operator",
    "weakref",
    "gc",
    "traceback",
]


def docstrings(limit: int | None = None) -> Iterator[tuple[str, str, str]]:
    """(qualified name, summary line, rest) of documented stdlib functions and classes whose
    docstring has a summary of 4+ words and 200+ more characters."""
    count = 0
    seen: set[str] = set()
    for mod_name in _MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:
            continue
        for name, obj in sorted(vars(mod).items()):
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            doc = inspect.getdoc(obj) or ""
            if doc in seen:
                continue
            summary, _, rest = doc.partition("\n")
            rest = rest.strip()
            if len(summary.split()) < 4 or len(rest) < 200 or _SIGNATURE.match(summary):
                continue
            seen.add(doc)
            yield f"{mod_name}.{name}", summary.strip(), rest
            count += 1
            if limit is not None and count >= limit:
                return


def split(text: str, size: int) -> list[str]:
    """`text` in pieces of at most `size` characters, cut at whitespace."""
    out, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start, end)
            end = cut if cut > start else end
        out.append(text[start:end].strip())
        start = end
    return [c for c in out if c]


def chunks(n: int, size: int = 800) -> list[str]:
    """The first `n` chunks of `size` characters of the English man pages, then of the
    translated ones (Debian ships about 99,000 chunks of English ones)."""
    out: list[str] = []
    english = man_pages(sections="123456789n", strict=False)
    translated = (
        ("", "", _text(gzip.decompress(f.read_bytes()).decode("utf-8", "replace"))[1])
        for f in sorted(MAN.glob("*/man*/*.gz"))
    )
    for _, _, body in itertools.chain(english, translated):
        out += split(body, size)
        if len(out) >= n:
            return out[:n]
    raise SystemExit(f"only {len(out)} chunks of man pages here; fewer than {n}")
