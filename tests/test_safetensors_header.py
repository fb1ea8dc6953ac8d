"""The safetensors header check every backend runs before its framework reads the file."""

from __future__ import annotations

import json
import struct

import pytest

from hubcore.errors import WeightsFormatError
from hubcore.store.safetensors_header import read_header, read_safetensors

TENSOR = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


def write(tmp_path, header: str | bytes, data: bytes = b"\0" * 8, length: int | None = None):
    raw = header.encode() if isinstance(header, str) else header
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def test_a_valid_header_is_returned(tmp_path) -> None:
    header = {"__metadata__": {"format": "pt"}, "a": TENSOR}
    assert read_header(write(tmp_path, json.dumps(header))) == header


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (f'{{"a": {json.dumps(TENSOR)}, "a": {json.dumps(TENSOR)}}}', b"\0" * 8, "more than once"),
        ('{"__metadata__": {"k": "1", "k": "2"}}', b"", "more than once"),
        ("[1, 2]", b"", "not a JSON object"),
        (b'{"a": "\xff"}', b"", "not JSON"),
        ("{not json", b"", "not JSON"),
        ('{"a": {"dtype": "F32", "shape": [2]}}', b"", "data_offsets"),
        ('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}', b"", "data_offsets"),
        ('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, true]}}', b"", "data_offsets"),
        (json.dumps({"a": TENSOR}), b"\0" * 4, "truncated"),
    ],
)
def test_malformed_headers_are_refused(tmp_path, header, data, message) -> None:
    with pytest.raises(WeightsFormatError, match=message):
        read_header(write(tmp_path, header, data))


def test_lengths_that_do_not_fit_are_refused(tmp_path) -> None:
    with pytest.raises(WeightsFormatError, match="more than"):
        read_header(write(tmp_path, "{}", length=1 << 40))
    with pytest.raises(WeightsFormatError, match="truncated"):
        read_header(write(tmp_path, "{}", b"", length=1000))
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x02\0\0")
    with pytest.raises(WeightsFormatError, match="too short"):
        read_header(short)


def test_the_loaders_own_refusals_become_format_errors(tmp_path) -> None:
    pytest.importorskip("safetensors")
    from safetensors.numpy import load_file

    # Offsets that leave a gap: the header check passes, the library refuses.
    path = write(tmp_path, json.dumps({"a": {**TENSOR, "data_offsets": [4, 8]}}))
    with pytest.raises(WeightsFormatError, match="not a readable safetensors file"):
        read_safetensors(path, load_file)
