"""Reading documents to ingest: text, Markdown, HTML and PDF files, and folders of them."""

from __future__ import annotations

import html.parser
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ferrovec.errors import InvalidInputError, UnsupportedError

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Document:
    """A document's text, named by `source` (its path relative to the folder ingested, or the
    name given with a text) and titled (a Markdown or HTML title, else the file name)."""

    source: str
    title: str
    text: str


@dataclass(frozen=True)
class Unreadable:
    """A file that could not be read into a document, and why (ingestion reports it and goes
    on with the other files)."""

    source: str
    error: str


def load_all(files: Iterable[tuple[Path, str]]) -> Iterator[Document | Unreadable]:
    """`load` each (file, source); a file that fails becomes an `Unreadable`."""
    for path, source in files:
        try:
            yield load(path, source)
        except (InvalidInputError, UnsupportedError) as e:
            yield Unreadable(source, str(e))
        except OSError as e:
            yield Unreadable(source, f"{source}: cannot read ({e.strerror or e})")


def find(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str]]:
    """(file, source) for each supported file among `paths` and inside the folders among them
    (sorted; hidden files and folders skipped). A file named directly is its own source name;
    one found in a folder is named by its path relative to that folder."""
    for given in paths:
        p = Path(given)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and f.suffix.lower() in SUFFIXES and not _hidden(rel):
                    yield f, rel.as_posix()
        elif p.is_file():
            if p.suffix.lower() not in SUFFIXES:
                raise UnsupportedError(
                    f"{p}: unsupported file type {p.suffix!r}; supported: "
                    + ", ".join(sorted(SUFFIXES))
                )
            yield p, p.name
        else:
            raise InvalidInputError(f"{p}: no such file or folder")


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def load(path: Path, source: str) -> Document:
    """The document in the file `path`, named `source`."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return from_pdf(path.read_bytes(), source)
    raw = path.read_bytes()
    return from_bytes(raw, source, suffix)


def from_bytes(raw: bytes, source: str, suffix: str) -> Document:
    """A document from a file's bytes (an upload), by the file's suffix."""
    suffix = suffix.lower()
    if suffix in PDF_SUFFIXES:
        return from_pdf(raw, source)
    if suffix not in HTML_SUFFIXES | TEXT_SUFFIXES and suffix != "":
        raise UnsupportedError(
            f"{source}: unsupported file type {suffix!r}; supported: " + ", ".join(sorted(SUFFIXES))
        )
    if b"\0" in raw[:8192]:
        raise InvalidInputError(f"{source}: a binary file, not text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInputError(
            f"{source}: not valid UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from None
    if suffix in HTML_SUFFIXES:
        return from_html(text, source)
    return Document(source, _markdown_title(text) or Path(source).stem, text)


def _markdown_title(text: str) -> str | None:
    for line in text.splitlines()[:50]:
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


class _HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML page (scripts and styles left out), blocks as paragraphs."""

    _BLOCKS: ClassVar[frozenset[str]] = frozenset(
        "p div br li tr h1 h2 h3 h4 h5 h6 section article pre blockquote table ul ol header "
        "footer".split()
    )
    _SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "noscript", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in self._BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def from_html(text: str, source: str) -> Document:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    title = " ".join(parser.title.split()) or Path(source).stem
    return Document(source, title, "".join(parser.parts))


def from_pdf(raw: bytes, source: str) -> Document:
    try:
        import pypdf
    except ImportError:
        raise UnsupportedError(
            f"{source}: reading PDF needs pypdf (pip install 'ferrovec[rag]')"
        ) from None
    import io

    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except Exception as e:  # pypdf raises many kinds for a damaged file
        raise InvalidInputError(f"{source}: not a readable PDF ({e})") from None
    return Document(source, (meta_title or "").strip() or Path(source).stem, "\n\n".join(pages))
