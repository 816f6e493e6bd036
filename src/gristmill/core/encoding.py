"""Text that must be UTF-8: where bytes are not, said the way a person can act on it."""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass

_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_UTF8_MARK = codecs.BOM_UTF8


@dataclass(frozen=True)
class NotUtf8:
    """The first byte of some data that is not UTF-8 text.

    ``offset`` counts bytes from 0; ``line`` is that byte's 1-based line. ``guess`` names
    the encoding the data is likely in (UTF-16 when it starts with its byte-order mark or
    holds NUL bytes; Latin-1 or Windows-1252 for any other single stray byte).
    """

    byte: int
    offset: int
    line: int
    guess: str

    def describe(self, name: str) -> str:
        """``NAME is not UTF-8 text: byte 0xe9 at offset 123 (line 4, perhaps Latin-1 or
        Windows-1252); save it as UTF-8``."""
        return (
            f"{name} is not UTF-8 text: byte 0x{self.byte:02x} at offset {self.offset} "
            f"(line {self.line}, perhaps {self.guess}); save it as UTF-8"
        )


def find_not_utf8(chunks: Iterable[bytes]) -> NotUtf8 | None:
    """The first byte of ``chunks`` (the data in order, in pieces of any size) that is not
    UTF-8 text, or ``None`` when all is. A NUL byte counts as not text: it is valid UTF-8,
    but text files hold none, and UTF-16 text is full of them."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    seen, lines, first = 0, 1, b""
    for chunk in chunks:
        first = first or chunk[:4]
        held = decoder.getstate()[0]  # the start of a character the last chunk cut in two
        data = held + chunk
        bad = data.find(b"\x00")  # (never among the held bytes: those are >= 0x80)
        try:
            decoder.decode(chunk if bad < 0 else chunk[: bad - len(held)])
        except UnicodeDecodeError as exc:  # its ``start`` counts in ``data``
            bad = exc.start
        if bad >= 0:
            return NotUtf8(
                byte=data[bad],
                offset=seen - len(held) + bad,
                line=lines + data.count(b"\n", 0, bad),
                guess=_guess(first, data[bad]),
            )
        seen, lines = seen + len(chunk), lines + chunk.count(b"\n")
    held = decoder.getstate()[0]
    if held:  # the data ends inside a character
        return NotUtf8(held[0], seen - len(held), lines, _guess(first, held[0]))
    return None


def decode_utf8(data: bytes, name: str) -> str:
    """``data`` as text (a UTF-8 byte-order mark dropped); ``ValueError`` saying where it is
    not UTF-8 (``NotUtf8.describe``), ``name`` naming the data (a file's path)."""
    problem = find_not_utf8([data])
    if problem is not None:
        raise ValueError(problem.describe(name))
    return data.removeprefix(_UTF8_MARK).decode("utf-8")


def _guess(first: bytes, byte: int) -> str:
    if first.startswith(_UTF16_MARKS) or byte == 0:
        return "UTF-16"
    return "Latin-1 or Windows-1252"
