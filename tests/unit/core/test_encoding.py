"""Where bytes stop being UTF-8 text: the byte, its offset and line, and a likely encoding,
whatever pieces the data comes in."""

from __future__ import annotations

import pytest

from gristmill.core.encoding import decode_utf8, find_not_utf8

LATIN1 = "name: churn\ncity: Zürich\n".encode("latin-1")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 1024])
def test_the_first_stray_byte_is_found_across_chunks(size: int) -> None:
    chunks = [LATIN1[i : i + size] for i in range(0, len(LATIN1), size)]
    found = find_not_utf8(chunks)
    assert found is not None
    assert (found.byte, found.offset, found.line) == (0xFC, 19, 2)
    assert found.guess == "Latin-1 or Windows-1252"


@pytest.mark.parametrize("size", [1, 2, 3, 1024])
def test_utf8_cut_anywhere_is_text(size: int) -> None:
    data = "é\nabc€\n𝄞 done\n".encode()
    assert find_not_utf8([data[i : i + size] for i in range(0, len(data), size)]) is None


@pytest.mark.parametrize(
    ("data", "byte", "offset"),
    [("a: 1\n".encode("utf-16"), 0xFF, 0), ("a: 1\n".encode("utf-16-le"), 0x00, 1)],
)
def test_utf16_is_named_with_or_without_its_mark(data: bytes, byte: int, offset: int) -> None:
    found = find_not_utf8([data])
    assert found is not None and (found.byte, found.offset, found.guess) == (byte, offset, "UTF-16")


def test_data_that_ends_inside_a_character() -> None:
    found = find_not_utf8(["ok\né".encode()[:-1]])
    assert found is not None and (found.byte, found.offset, found.line) == (0xC3, 3, 2)


def test_decode_says_where_and_how_to_fix() -> None:
    with pytest.raises(ValueError, match=r"^p\.yaml is not UTF-8 text: byte 0xfc at offset 19 "):
        decode_utf8(LATIN1, "p.yaml")
    assert decode_utf8("\ufeffname: é".encode(), "p.yaml") == "name: é"
