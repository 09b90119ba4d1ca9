"""Splitting documents into chunks of at most `size` characters, on paragraph boundaries where
they fit, else on sentence boundaries, else on words (a very long word is cut); consecutive
chunks share about `overlap` characters of whole sentences or words, so a passage cut at a
boundary is still found whole in one of them."""

from __future__ import annotations

import re

_PARAGRAPH = re.compile(r"\n\s*\n")
# Sentence ends, the CJK full stop and full-width marks included.
_SENTENCE = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+")
_SPACE = re.compile(r"[ \t\r\f\v]+")


def split(text: str, size: int = 800, overlap: int = 150) -> list[str]:
    """Chunks of `text`, each at most `size` characters, in order."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size} and {overlap}")
    pieces = [p for para in _paragraphs(text) for p in _fit(para, size)]
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for piece in pieces:
        extra = len(piece) + (1 if current else 0)
        if current and length + extra > size:
            chunks.append(" ".join(current))
            current, length = _tail(current, overlap, size - len(piece) - 1)
            extra = len(piece) + (1 if current else 0)
        current.append(piece)
        length += extra
    if current:
        chunks.append(" ".join(current))
    return chunks


def _paragraphs(text: str) -> list[str]:
    out = []
    for para in _PARAGRAPH.split(text):
        para = " ".join(_SPACE.sub(" ", line).strip() for line in para.splitlines()).strip()
        if para:
            out.append(para)
    return out


def _fit(text: str, size: int) -> list[str]:
    """`text` as pieces of at most `size` characters: itself, its sentences, or their words."""
    if len(text) <= size:
        return [text]
    out = []
    for sentence in _SENTENCE.split(text):
        if len(sentence) <= size:
            out.append(sentence)
            continue
        for word in sentence.split():
            out.extend(word[i : i + size] for i in range(0, len(word), size))
    return out


def _tail(pieces: list[str], overlap: int, room: int) -> tuple[list[str], int]:
    """The last pieces of a chunk, at most `overlap` characters (and `room`), to start the next
    one with; whole pieces only."""
    keep: list[str] = []
    length = 0
    for piece in reversed(pieces):
        extra = len(piece) + (1 if keep else 0)
        if length + extra > min(overlap, room):
            break
        keep.insert(0, piece)
        length += extra
    return keep, length
