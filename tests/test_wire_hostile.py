"""The judge's side of the wire against a hostile worker: forged replies must be rejected with a
WireError, quickly and without allocating what they claim; honest replies must round-trip exactly.

Forged frames are built here by hand: torch.save on crafted objects, pickles whose persistent ids
and rebuild calls lie, and zips written or patched byte by byte. No sandbox is needed.
"""
from __future__ import annotations

import collections
import enum
import io
import json
import os
import pickle
import resource
import signal
import struct
import time
import zipfile
import zlib
from contextlib import contextmanager

import pytest
import torch

from grader.sandbox import wire
from grader.sandbox.wire import WireError, check_plain, decode_reply, encode_reply, to_plain

# --- forging ------------------------------------------------------------------------------

class _Call:
    """Pickles as a call fn(*args), as torch.save writes a tensor."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _Pid:
    def __init__(self, pid):
        self.pid = pid


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, _Pid) else None


def forged_tensor(numel, size, stride, offset=0, key="0", storage=torch.FloatStorage):
    """A tensor as torch.save pickles it, claiming whatever it is told: a storage of numel elements
    under data/<key>, viewed with size, stride and offset."""
    return _Call(torch._utils._rebuild_tensor_v2,
                 (_Pid(("storage", storage, key, "cpu", numel)), offset, tuple(size), tuple(stride), False,
                  collections.OrderedDict()))


def forged_pickle(obj) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def archive(pickle_bytes: bytes, records: dict | None = None, *, compress: bool = False,
            extra: tuple = ()) -> bytes:
    """A zip laid out as torch.save lays it out (zipfile writes it: no zip64 end record)."""
    out = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(out, "w", method) as z:
        z.writestr("archive/data.pkl", pickle_bytes)
        z.writestr("archive/byteorder", "little")
        for key, data in (records or {}).items():
            z.writestr(f"archive/data/{key}", data)
        for name, data in extra:
            z.writestr(name, data)
        z.writestr("archive/version", "3\n")
    return out.getvalue()


def floats(*values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def patch_central_sizes(payload: bytes, name: str, csize: int, usize: int) -> bytes:
    """Rewrite the sizes that the central directory gives for one entry."""
    data = bytearray(payload)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len] == name.encode():
            struct.pack_into("<II", data, at + 20, csize, usize)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"no central entry {name}")


@contextmanager
def deadline(seconds: float):
    """Fail (instead of hanging the suite) when the block runs longer than seconds."""
    def expire(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def same(a, b) -> bool:
    """Exact equality of plain data: types, dtypes, shapes and values."""
    if type(a) is not type(b):
        return False
    if type(a) is torch.Tensor:
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b or (a != a and b != b)  # NaN


# --- shared references, nesting, cycles ---------------------------------------------------

def test_shared_reference_bomb_decodes_in_well_under_a_second():
    bomb = []
    for _ in range(30):  # 2**30 paths through 31 objects
        bomb = [bomb, bomb]
    payload = encode_reply(bomb)
    assert len(payload) < 4096
    with deadline(2.0):
        start = time.perf_counter()
        with pytest.raises(WireError, match="nested more than 20 levels"):
            decode_reply(payload)
        with pytest.raises(WireError, match="unfolds into more than 4000000 objects"):  # what a walker would visit
            decode_reply(payload, max_depth=64)
        value = decode_reply(payload, max_depth=64, max_nodes=2**40)  # allowed, it is walked once per object
        elapsed = time.perf_counter() - start
    assert elapsed < 0.5
    assert value[0] is value[1]


def test_wide_shared_fanout_within_the_depth_limit_is_walked_once():
    fan = ["leaf"]
    for _ in range(19):  # 50**19 paths, 20 objects
        fan = [fan] * 50
    payload = encode_reply(fan)
    with deadline(2.0):
        start = time.perf_counter()
        with pytest.raises(WireError, match="unfolds into more than"):
            decode_reply(payload)
        value = decode_reply(payload, max_nodes=10**40)
        assert time.perf_counter() - start < 0.5
    assert value[0] is value[49]
    with pytest.raises(WireError, match="more than 5 objects"):  # shared objects count once, distinct ones each
        decode_reply(encode_reply([[str(i)] for i in range(5)]), max_nodes=5)
    shared = encode_reply([["a", "b"]] * 1000)  # 4 objects; 3001 counting each reference
    assert len(decode_reply(shared, max_nodes=1000)) == 1000
    with pytest.raises(WireError, match="unfolds into more than 20 objects"):
        decode_reply(shared, max_nodes=5)


def test_a_list_that_contains_itself_is_rejected():
    loop = [1]
    loop.append(loop)
    with deadline(2.0), pytest.raises(WireError, match="contains itself"):
        decode_reply(encode_reply({"a": loop}))


# --- memory: claims that would make the judge allocate --------------------------------------

def deflate_bomb(mib: int) -> tuple[bytes, int]:
    """mib MiB of zeros as a raw deflate stream of a few KiB (one segment, repeated), and its CRC."""
    chunk = bytes(1 << 20)
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = squeezer.compress(chunk) + squeezer.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, self-contained
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return segment * mib + b"\x03\x00", crc  # and an empty final block


def raw_zip(entries) -> bytes:
    """A zip written byte by byte: entries are (name, method, bytes as stored[, size unpacked, crc])."""
    out, central = bytearray(), bytearray()
    for name, method, data, *unpacked in entries:
        size, crc = unpacked or (len(data), zlib.crc32(data))
        raw, at = name.encode(), len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size,
                           len(raw), 0) + raw + data
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data),
                               size, len(raw), 0, 0, 0, 0, 0, at) + raw
    return bytes(out + central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                                             len(central), len(out), 0))


def decode_in_child(frames: dict[str, bytes]) -> dict[str, list]:
    """Decode each frame in a forked child; return {name: [outcome, growth of its peak RSS in MB]}.

    A fork starts with its peak RSS at what the parent holds now, so what a decode allocates shows
    even when this process peaked higher earlier (ru_maxrss only ever grows)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no torch kernels run here (every frame is refused before torch.load)
        try:
            os.close(read_end)
            results = {}
            for name, payload in frames.items():
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                try:
                    value = decode_reply(payload)
                    outcome = f"accepted {type(value).__name__}"
                except WireError as err:
                    outcome = str(err)
                except BaseException as err:  # noqa: BLE001 -- reported, not hidden
                    outcome = f"{type(err).__name__}: {err}"
                results[name] = [outcome, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024]
            os.write(write_end, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    with deadline(30.0):
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
        os.waitpid(pid, 0)
    os.close(read_end)
    return json.loads(b"".join(chunks))


def test_claims_of_huge_tensors_are_rejected_without_allocating():
    big = 2**26  # float32 elements: 256 MiB if anything believed them
    zeros, crc = deflate_bomb(256)
    frames = {
        # 2**28 elements (1 GiB of float32) from a 4-byte storage
        "expanded": encode_reply(torch.zeros(1).expand(2**28)),
        # a 2**26-float storage declared, 16 bytes in the archive
        "storage_claim": archive(forged_pickle(forged_tensor(big, [big], [1])), {"0": floats(0, 0, 0, 0)}),
        # a 4-float storage viewed as 2**26 floats
        "view_claim": archive(forged_pickle(forged_tensor(4, [big], [1])), {"0": floats(0, 0, 0, 0)}),
        # strides that jump 2**26 floats ahead
        "stride_claim": archive(forged_pickle(forged_tensor(4, [2, 2], [big, 1])), {"0": floats(0, 0, 0, 0)}),
        # a zip bomb: 256 MiB of zeros deflated into a few KiB (torch.load would inflate it)
        "zip_bomb": raw_zip([("archive/data.pkl", 0, forged_pickle(forged_tensor(big, [big], [1]))),
                             ("archive/data/0", zipfile.ZIP_DEFLATED, zeros, 4 * big, crc),
                             ("archive/version", 0, b"3\n")]),
    }
    assert all(len(frame) < 300_000 for frame in frames.values())
    results = decode_in_child(frames)
    expected = {
        "expanded": "expanded tensor",
        "storage_claim": "claims 268435456 bytes but the archive holds 16",
        "view_claim": "reaches 268435456 bytes into a storage of 16",
        "stride_claim": "reaches 268435464 bytes into a storage of 16",
        "zip_bomb": "is compressed",
    }
    for name, reason in expected.items():
        outcome, growth_mb = results[name]
        assert reason in outcome, (name, outcome)
        assert growth_mb < 200, (name, growth_mb)


def test_a_tensor_larger_than_its_storage_is_rejected():
    four = {"0": floats(1, 2, 3, 4)}
    cases = [
        (forged_tensor(4, [8], [1]), "reaches 32 bytes into a storage of 16"),
        (forged_tensor(4, [2], [1], offset=3), "reaches 20 bytes into a storage of 16"),
        (forged_tensor(4, [3], [3]), "reaches 28 bytes into a storage of 16"),
        (forged_tensor(4, [4], [-1], offset=3), "negative"),
        (forged_tensor(16, [4], [1]), "claims 64 bytes but the archive holds 16"),
        (forged_tensor(4, [4], [1], key="7"), "storage '7', which the archive lacks"),
        (forged_tensor(4, [2, 2], [1, 1]), "overlap"),
        (forged_tensor(4, [3, 2], [0, 1]), "expanded"),
    ]
    for forged, reason in cases:
        with pytest.raises(WireError, match=reason):
            decode_reply(archive(forged_pickle(forged), four))
    # the same archive with an honest claim decodes
    assert torch.equal(decode_reply(archive(forged_pickle(forged_tensor(4, [2, 2], [1, 2])), four)),
                       torch.tensor([[1.0, 3.0], [2.0, 4.0]]))


# --- tensors that are not plain --------------------------------------------------------------

class _Marked(torch.Tensor):
    pass


def _non_plain_tensors():
    yield "complex", torch.zeros(3, dtype=torch.complex64), "complex"
    yield "sparse", torch.eye(3).to_sparse(), "sparse"
    yield "meta", torch.zeros(3, device="meta"), "meta device"
    with _quiet():  # these warn that they are deprecated or in beta
        yield "sparse_csr", torch.eye(3).to_sparse_csr(), "sparse"
        yield "quantized", torch.quantize_per_tensor(torch.zeros(3), 0.1, 0, torch.quint8), "quantized"
        yield "nested", torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)]), "nested"
    yield "parameter", torch.nn.Parameter(torch.zeros(2)), "Parameter"
    yield "subclass", torch.zeros(2).as_subclass(_Marked), "subclass|_Marked"
    yield "negative_view", torch._neg_view(torch.zeros(3)), "negation"
    if hasattr(torch, "float8_e4m3fn"):
        yield "float8", torch.zeros(2, dtype=torch.float8_e4m3fn), "float8"


@contextmanager
def _quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name, tensor, reason", list(_non_plain_tensors()),
                         ids=[case[0] for case in _non_plain_tensors()])
def test_tensors_that_are_not_plain_are_rejected(name, tensor, reason):
    with _quiet():
        payload = encode_reply({"value": [tensor]})
    with pytest.raises(WireError, match=reason):
        decode_reply(payload)
    with pytest.raises(WireError):  # and check_plain refuses the object itself
        check_plain({"value": [tensor]})


def test_check_plain_reads_geometry_without_touching_data():
    with pytest.raises(WireError, match="expanded"):
        check_plain(torch.zeros(1).expand(2**40))  # 4 TiB if materialised
    with pytest.raises(WireError, match="overlap"):
        check_plain(torch.zeros(16).as_strided((4, 4), (1, 1)))
    with pytest.raises(WireError, match="elements in all"):
        check_plain([torch.zeros(600), torch.zeros(600)], max_elements=1000)
    shared = torch.zeros(600)
    assert check_plain([shared, shared], max_elements=1000)[0] is shared  # one tensor, counted once
    transposed, strided = torch.zeros(3, 4).t(), torch.arange(10.0)[::3]
    assert check_plain([transposed, strided]) == [transposed, strided]  # non-contiguous but safe views


# --- broken and forged archives ---------------------------------------------------------------

def test_truncated_and_corrupted_frames_are_rejected_with_wire_error():
    payload = encode_reply({"w": torch.arange(64.0).reshape(8, 8), "meta": ["x", 1, None]})
    assert same(decode_reply(payload), {"w": torch.arange(64.0).reshape(8, 8), "meta": ["x", 1, None]})
    for cut in [*range(0, len(payload), max(1, len(payload) // 150)), len(payload) - 1]:
        with pytest.raises(WireError):
            decode_reply(payload[:cut])
    flips = 0
    for at in range(0, len(payload), max(1, len(payload) // 300)):  # a damaged byte: plain data or WireError
        damaged = bytearray(payload)
        damaged[at] ^= 0x5A
        try:
            check_plain(decode_reply(bytes(damaged)))
        except WireError:
            flips += 1
    assert flips > 0


def test_archives_that_torch_save_would_not_write_are_rejected():
    pkl = forged_pickle(forged_tensor(4, [4], [1]))
    four = {"0": floats(1, 2, 3, 4)}
    honest = archive(pkl, four)
    assert torch.equal(decode_reply(honest), torch.tensor([1.0, 2, 3, 4]))
    cases = {
        "is compressed": archive(pkl, four, compress=True),
        "more bytes than the whole reply": patch_central_sizes(honest, "archive/data/0", 0x7FFFFFF0, 0x7FFFFFF0),
        "claims 4096 bytes": patch_central_sizes(honest, "archive/data/0", 16, 4096),
        "not a torch.save archive": b"junk" + honest,
        "bytes after its end": honest + b"\0" * 7,
        "does not write": archive(pkl, four, extra=(("archive/constants.pkl", b"\x80\x02N."),)),
        "two entries": raw_zip([("archive/data.pkl", 0, pkl), ("archive/data/0", 0, floats(1, 2, 3, 4)),
                                ("archive/data/0", 0, floats(9, 9, 9, 9)), ("archive/version", 0, b"3\n")]),
        "larger than the limit of": honest,  # with a small frame limit, below
    }
    for reason, payload in cases.items():
        limit = {"max_frame": len(honest) - 1} if reason == "larger than the limit of" else {}
        with pytest.raises(WireError, match=reason):
            decode_reply(payload, **limit)
    legacy = io.BytesIO()
    torch.save({"a": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(WireError, match="not a torch.save archive"):  # torch.load's legacy reader is never reached
        decode_reply(legacy.getvalue())


def test_pickles_that_torch_save_would_not_write_are_rejected():
    far_memo = b"\x80\x02N" + b"r" + struct.pack("<I", 2**31) + b"."  # PROTO 2, NONE, LONG_BINPUT 2**31, STOP
    with pytest.raises(WireError, match="memo slots out of order"):
        decode_reply(archive(far_memo))
    buffer = io.BytesIO()
    torch.save([1, 2], buffer, pickle_protocol=4)
    with pytest.raises(WireError, match="protocol 4"):
        decode_reply(buffer.getvalue())
    with pytest.raises(WireError, match="more than 2040 bits"):
        decode_reply(encode_reply(2**3000))
    assert decode_reply(encode_reply(2**2000)) == 2**2000
    with pytest.raises(WireError, match="builtins.set"):
        decode_reply(encode_reply({1, 2}))
    with pytest.raises(WireError, match="operations"):
        decode_reply(encode_reply([None] * 10_000), max_nodes=100, max_tensors=0)
    with pytest.raises(WireError, match="more than 2 tensors"):
        decode_reply(encode_reply([torch.zeros(1), torch.zeros(1), torch.zeros(1)]), max_tensors=2)


# --- honest replies -----------------------------------------------------------------------------

class _Colour(enum.IntEnum):
    RED = 1


class _Float(float):
    pass


def test_honest_replies_round_trip_exactly():
    base = torch.arange(24.0).reshape(2, 3, 4)
    reply = {
        "ok": True,
        "value": {
            "tensors": {
                "float32": base,
                "float64": base.double(),
                "float16": base.half(),
                "bfloat16": base.bfloat16(),
                "int64": torch.arange(5),
                "int8": torch.tensor([-3, 0, 3], dtype=torch.int8),
                "uint8": torch.tensor([0, 255], dtype=torch.uint8),
                "bool": torch.tensor([True, False]),
                "scalar": torch.tensor(3.5),
                "empty": torch.zeros(0, 3),
            },
            "views": [base.transpose(0, 2), base[:, 1], base[..., ::2], torch.zeros(1, 3).expand(4, 3),
                      torch.nn.Parameter(torch.ones(2)), torch._neg_view(torch.ones(2))],
            "numbers": [0, -1, 2**62, 2**100, 1.5, float("inf"), float("nan"), True, False, None],
            "strings": ["", "é✓", "x" * 10_000],
            "tuple": (1, (2, 3)),
            "empty": [[], {}, ()],
            "subclasses": [_Colour.RED, _Float(2.5)],
        },
    }
    plain = to_plain(reply)
    decoded = decode_reply(encode_reply(plain))
    assert same(decoded, plain)
    views = decoded["value"]["views"]
    expected_views = [base.transpose(0, 2), base[:, 1], base[..., ::2], torch.zeros(4, 3), torch.ones(2), -torch.ones(2)]
    for got, want in zip(views, expected_views):
        assert type(got) is torch.Tensor and got.is_contiguous() and torch.equal(got, want)
    assert decoded["value"]["tuple"] == [1, [2, 3]]
    assert [type(v) for v in decoded["value"]["subclasses"]] == [int, float]


def test_to_plain_copies_only_the_elements_a_view_shows_and_keeps_sharing():
    big = torch.zeros(1_000_000)
    assert len(encode_reply(to_plain(big[:10]))) < 10_000  # not the 4 MB storage behind the view
    inner = [torch.ones(3)]
    plain = to_plain({"a": inner, "b": inner})
    assert plain["a"] is plain["b"]
    decoded = decode_reply(encode_reply(plain))
    assert decoded["a"] is decoded["b"]
    assert same(to_plain(torch.eye(3).to_sparse()), torch.eye(3))
    with _quiet():
        quantized = torch.quantize_per_tensor(torch.tensor([0.5, 1.0]), 0.5, 0, torch.quint8)
    assert same(to_plain(quantized), torch.tensor([0.5, 1.0]))


def test_limits_are_configurable_per_call():
    payload = encode_reply({"x": torch.zeros(100), "y": [str(i) for i in range(20)], "z": [[[1]]]})
    decode_reply(payload)
    decode_reply(payload, max_frame=len(payload), max_nodes=100, max_elements=100, max_tensors=1, max_depth=4)
    for limits, reason in [({"max_frame": len(payload) - 1}, "larger than the limit"),
                           ({"max_nodes": 20}, "more than 20 objects"),
                           ({"max_elements": 99}, "more than 99 elements"),
                           ({"max_tensors": 0}, "more than 0 tensors"),
                           ({"max_depth": 3}, "more than 3 levels")]:
        with pytest.raises(WireError, match=reason):
            decode_reply(payload, **limits)
    assert wire.MAX_FRAME == 256 * 1024 * 1024 and wire.MAX_ELEMENTS == 64 * 1024 * 1024


def test_check_plain_still_refuses_what_it_refused():
    for value, reason in [({1: 2}, "dict key of type int"), ({1, 2}, "set"), (b"x", "bytes"),
                          ([1, object()], "object"), (_Float(1.0), "_Float")]:
        with pytest.raises(WireError, match=reason):
            check_plain(value)
    assert check_plain([[1]], 18) == [[1]]
    with pytest.raises(WireError, match="nested"):
        check_plain([[1]], 19)
