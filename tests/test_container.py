"""The container format: golden bytes, and every defect caught before decoding starts."""

import struct

import pytest

from bitlens.compress.container import FORMAT_VERSION, MAGIC, Header, crc32, pack_header, unpack
from bitlens.errors import BitlensError

# magic | version 5 | mode 1 (online) | 2 threads | length 1000 | crc 0x12345678 | 3 streams |
# 5 payload words | payload crc 0xCAFEBABE | fingerprint 00..1f | 27 bytes of JSON | header crc
FIELDS = (
    "01"
    "0200"
    "e803000000000000"
    "78563412"
    "03000000"
    "0500000000000000"
    "bebafeca"
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "1b00"
)
GOLDEN = bytes.fromhex("89424c5a05" + FIELDS) + b'{"seed":7,"torch":"2.13.0"}' + bytes.fromhex("a2c5a3d3")
# the same header as format version 4 wrote it (no final_lr existed; still read)
GOLDEN_V4 = bytes.fromhex("89424c5a04" + FIELDS) + b'{"seed":7,"torch":"2.13.0"}' + bytes.fromhex("bbdf6d82")
# the same header as format version 3 wrote it (no lag or word2 existed; still read)
GOLDEN_V3 = bytes.fromhex("89424c5a03" + FIELDS) + b'{"seed":7,"torch":"2.13.0"}' + bytes.fromhex("b59f76ec")
# the same header as format version 2 wrote it (no head_lr or selectors existed; still read)
GOLDEN_V2 = bytes.fromhex("89424c5a02" + FIELDS) + b'{"seed":7,"torch":"2.13.0"}' + bytes.fromhex("ac85b8bd")

HEADER = Header(
    mode="online",
    threads=2,
    original_length=1000,
    original_crc32=0x12345678,
    n_streams=3,
    payload_words=5,
    payload_crc32=0xCAFEBABE,
    fingerprint=bytes(range(32)),
    params={"torch": "2.13.0", "seed": 7},
)


def _file(payload: bytes = bytes(range(20))) -> bytes:
    h = Header(**{**HEADER.__dict__, "payload_words": len(payload) // 4, "payload_crc32": crc32(payload)})
    return pack_header(h) + payload


def test_golden_bytes():
    assert FORMAT_VERSION == 5 and MAGIC == b"\x89BLZ"
    assert pack_header(HEADER) == GOLDEN
    assert HEADER.size == len(GOLDEN) == 101


def _as_version(blob: bytes, version: int) -> bytes:
    """The file with its header's version byte replaced (and the header CRC redone)."""
    head = blob[:4] + bytes([version]) + blob[5 : len(GOLDEN) - 4]
    return head + struct.pack("<I", crc32(head)) + blob[len(GOLDEN) :]


def test_version_2_3_and_4_files_are_still_read_and_version_1_refused():
    assert _as_version(GOLDEN, 2) == GOLDEN_V2 and _as_version(GOLDEN, 3) == GOLDEN_V3
    assert _as_version(GOLDEN, 4) == GOLDEN_V4
    assert unpack(_as_version(_file(), 2)) == unpack(_file()) == unpack(_as_version(_file(), 3))
    assert unpack(_as_version(_file(), 4)) == unpack(_file())
    with pytest.raises(BitlensError, match="format version 1 is not supported"):
        unpack(_as_version(_file(), 1))


def test_round_trip():
    payload = bytes(range(20))
    header, got = unpack(_file(payload))
    assert got == payload
    assert header.mode == "online" and header.threads == 2 and header.n_streams == 3
    assert header.original_length == 1000 and header.original_crc32 == 0x12345678
    assert header.fingerprint == bytes(range(32)) and header.params == {"torch": "2.13.0", "seed": 7}


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda b: b"PK\x03\x04" + b[4:], "not a bitlens compressed file"),
        (lambda b: b"", "not a bitlens compressed file"),
        (lambda b: b[:30], "truncated file: the header is incomplete"),
        (lambda b: b[:-3], "truncated file"),
        (lambda b: b + b"\x00" * 4, "corrupted file"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "payload fails its CRC-32"),
        (lambda b: b[:12] + bytes([b[12] ^ 0x40]) + b[13:], "header fails its CRC-32"),
        (lambda b: b[:4] + bytes([FORMAT_VERSION + 1]) + b[5:], "format version 6 is not supported"),
    ],
)
def test_defects_are_clear_errors(mangle, message):
    with pytest.raises(BitlensError, match=message):
        unpack(mangle(_file()))


def test_fixed_fields_are_little_endian():
    (length,) = struct.unpack_from("<Q", GOLDEN, 8)
    assert length == 1000
