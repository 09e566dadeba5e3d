"""What crosses between the judge and the sandboxed worker, and how.

Frames are a 4-byte big-endian length and a payload. The judge sends requests
as pickles (the worker may unpickle what the judge sends: the judge is trusted).
The worker answers with ``torch.save`` bytes that the judge reads with
``torch.load(weights_only=True)``, which rebuilds tensors, numbers, strings,
lists and dicts and executes nothing; ``check_plain`` then rejects anything else,
tensor subclasses included. The judge never unpickles what the worker sends
with anything but restricted unpicklers.

Everything the worker sends is hostile, so ``decode_reply`` bounds the time and
memory that a reply can cost the judge before ``torch.load`` sees it:

1. the frame is at most ``max_frame`` bytes;
2. the archive is read by hand (``_read_archive``) and must look as ``torch.save``
   writes it: every entry stored uncompressed and inside the frame, their sizes
   adding up to no more than the frame, no two of the same name, nothing before or
   after, only the files ``torch.save`` writes (no TorchScript, no legacy format).
   So ``torch.load`` never allocates more for the archive than the frame holds;
3. the pickle's opcodes are listed (``_scan_pickle``, linear, nothing built): at
   most a bounded number, only those ``torch.save`` emits for plain data, only
   the globals that rebuild dense tensors of plain dtypes, memo indices in order;
4. a dry run (``_DryRun``) unpickles it again with stand-ins for tensors and
   storages: each storage's declared size must match its record in the archive,
   and each tensor's sizes and strides must stay inside its storage without
   overlapping (a stride-0 ``expand()`` overlaps), within the element budget;
5. only then ``torch.load(weights_only=True)``, and ``check_plain`` on what it
   built: exact plain types, no cycles, bounded nesting, at most ``max_nodes``
   distinct objects (a shared reference costs once), every tensor checked again.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import struct
import threading
import time
import zipfile

import torch

MAX_FRAME = 256 * 1024 * 1024  # bytes: a reply larger than this is a misbehaving worker
MAX_NODES = 1_000_000  # distinct objects in a reply (each counted once, however often referenced)
MAX_ELEMENTS = 64 * 1024 * 1024  # tensor elements in a reply, all tensors together (256 MiB of float32)
MAX_TENSORS = 10_000  # tensors in a reply: torch.load spends ~0.2 ms on each, whatever its size
MAX_DEPTH = 20  # nesting of lists and dicts
# pickle opcodes a reply may spend: torch.save spends at most ~3 per plain object and ~25 per tensor
OPS_PER_NODE, OPS_PER_TENSOR = 4, 32
# Shared references cost check_plain once, but whatever walks the reply next (a comparison,
# torch.tensor(reply)) visits a shared list once per reference: the reply, unfolded, is bounded too.
UNFOLD_FACTOR = 4  # objects counted once per reference <= UNFOLD_FACTOR * max_nodes

PLAIN_DTYPES = frozenset(
    [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
     torch.float16, torch.bfloat16, torch.float32, torch.float64]
    + [getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name)])


class WireError(Exception):
    """The other side sent something that is not a valid frame or plain data."""


def send_frame(sock, payload: bytes) -> None:
    sock.sendall(struct.pack(">I", len(payload)) + payload)


def recv_exactly(sock, n: int, deadline: float | None = None) -> bytes:
    """Read n bytes; with a deadline (time.monotonic()), raise TimeoutError when it passes."""
    chunks, remaining = [], n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
        chunk = sock.recv(min(remaining, 1 << 20))  # socket.timeout is TimeoutError
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock, deadline: float | None = None, max_frame: int = MAX_FRAME) -> bytes:
    (length,) = struct.unpack(">I", recv_exactly(sock, 4, deadline))
    if length > max_frame:
        raise WireError(f"frame of {length} bytes is larger than the limit of {max_frame}")
    return recv_exactly(sock, length, deadline)


# --- judge -> worker ----------------------------------------------------------------

def encode_request(request: dict) -> bytes:
    return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)


def decode_request(payload: bytes) -> dict:
    return pickle.loads(payload)  # noqa: S301 -- only the trusted judge writes requests


# --- worker -> judge ----------------------------------------------------------------

_converting = threading.local()  # .memo: {id: (value, plain)} while an outermost to_plain call runs


def to_plain(value):
    """Turn a value into plain data (run in the worker before sending).

    Tensors become plain, dense, contiguous CPU ``torch.Tensor`` copies holding only
    their own elements (a subclass is cast down, an expanded or strided view is
    copied out, a sparse tensor made dense, a quantized one dequantized); tuples
    become lists; numbers and strings become exactly bool, int, float or str; None,
    lists and dicts (keys made str) pass. An object referenced twice is converted
    once and stays shared. (The recursion goes through the module's name ``to_plain``.)
    """
    memo = getattr(_converting, "memo", None)
    if memo is not None:
        return _to_plain(value, memo)
    _converting.memo = {}
    try:
        return _to_plain(value, _converting.memo)
    finally:
        _converting.memo = None


def _to_plain(value, memo: dict):
    done = memo.get(id(value))
    if done is not None:
        return done[1]
    if isinstance(value, torch.Tensor):
        tensor = value.detach()
        if type(tensor) is not torch.Tensor:
            tensor = tensor.as_subclass(torch.Tensor)
        if tensor.layout != torch.strided and not tensor.is_nested:
            tensor = tensor.to_dense()
        if tensor.is_quantized:
            tensor = tensor.dequantize()
        tensor = tensor.cpu().resolve_conj().resolve_neg()
        result = tensor.clone(memory_format=torch.contiguous_format)
    elif value is None:
        return None
    elif isinstance(value, bool):
        return bool(value)
    elif isinstance(value, int):
        return int(value)
    elif isinstance(value, float):
        return float(value)
    elif isinstance(value, str):
        return str(value)
    elif isinstance(value, (list, tuple)):
        result = []
        memo[id(value)] = (value, result)  # holds value, so that its id is not reused meanwhile
        result.extend(to_plain(v) for v in value)
    elif isinstance(value, dict):
        result = {}
        memo[id(value)] = (value, result)
        for k, v in value.items():
            result[str(k)] = to_plain(v)
    else:
        raise TypeError(f"cannot send a {type(value).__name__} to the grader")
    memo[id(value)] = (value, result)
    return result


def encode_reply(reply) -> bytes:
    buffer = io.BytesIO()
    torch.save(reply, buffer, pickle_protocol=2)  # decode_reply reads protocol 2 only
    return buffer.getvalue()


def _what_tensor(tensor) -> str | None:
    """Why a torch.Tensor is not plain, or None. Reads only metadata: allocates nothing."""
    if tensor.is_nested:
        return "a nested tensor"
    if tensor.is_quantized:
        return "a quantized tensor"
    if tensor.layout != torch.strided:
        return f"a tensor of layout {tensor.layout} (only dense tensors are plain)"
    if tensor.device.type != "cpu":
        return f"a tensor on the {tensor.device.type} device"
    if tensor.dtype not in PLAIN_DTYPES:
        return f"a tensor of dtype {tensor.dtype} (only float, int and bool tensors are plain)"
    if tensor.is_neg() or tensor.is_conj():
        return "a tensor with a lazy negation or conjugation bit"
    if getattr(tensor, "_backward_hooks", None):
        return "a tensor with backward hooks"
    return None


def _check_extent(size, stride, offset, nbytes: int, itemsize: int) -> int:
    """Raise WireError unless a tensor of this geometry stays inside nbytes without overlapping
    itself; return its number of elements. Pure arithmetic on the claimed numbers."""
    if len(size) != len(stride):
        raise WireError("reply holds a tensor whose sizes and strides do not match")
    if offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise WireError("reply holds a tensor with a negative size, stride or offset")
    numel = 1
    for n in size:
        numel *= n
    if numel == 0:
        return 0
    # Walk the dimensions from the smallest stride: each must step past everything the
    # smaller ones reach, or two indices land on the same element.
    span = 1  # elements covered, from the offset, by the dimensions walked so far
    for step, n in sorted((s, n) for n, s in zip(size, stride) if n > 1):
        if step == 0:
            raise WireError(f"reply holds an expanded tensor (stride 0 on a dimension of size {n}); "
                            "send a .contiguous() copy")
        if step < span:
            raise WireError("reply holds a tensor whose strides make elements overlap; send a .contiguous() copy")
        span += (n - 1) * step
    needed = (offset + span) * itemsize
    if needed > nbytes:
        raise WireError(f"reply holds a tensor that reaches {needed} bytes into a storage of {nbytes} bytes")
    return numel


class _Budget:
    def __init__(self, max_nodes: int, max_elements: int, max_tensors: int):
        self.max_nodes, self.max_elements, self.max_tensors = max_nodes, max_elements, max_tensors
        self.nodes = self.elements = self.tensors = 0

    def node(self):
        self.nodes += 1
        if self.nodes > self.max_nodes:
            raise WireError(f"reply holds more than {self.max_nodes} objects")

    def tensor(self, numel: int):
        self.tensors += 1
        if self.tensors > self.max_tensors:
            raise WireError(f"reply holds more than {self.max_tensors} tensors")
        self.elements += numel
        if self.elements > self.max_elements:
            raise WireError(f"reply's tensors hold more than {self.max_elements} elements in all")


def _check_tensor(tensor, budget: _Budget) -> None:
    why = _what_tensor(tensor)
    if why:
        raise WireError(f"reply holds {why}")
    try:
        nbytes = tensor.untyped_storage().nbytes()
    except Exception:  # a tensor without storage (a wrapper, a functional or fake tensor)
        raise WireError("reply holds a tensor without storage") from None
    numel = _check_extent(tuple(tensor.shape), tensor.stride(), tensor.storage_offset(), nbytes,
                          tensor.element_size())
    budget.tensor(numel)


_LEAVES = frozenset({bool, int, float, str, type(None)})


def check_plain(value, depth: int = 0, *, max_nodes: int = MAX_NODES, max_elements: int = MAX_ELEMENTS,
                max_tensors: int = MAX_TENSORS, max_depth: int = MAX_DEPTH):
    """Raise WireError unless value is plain data; return it.

    Plain data: None, bool, int, float, str, lists and tuples of plain data, dicts with
    str keys and plain values (exact types: no subclasses), and plain CPU torch.Tensor of a
    float, int or bool dtype that stays inside its storage without overlapping itself.
    Each distinct object is visited once (a shared reference costs once); a cycle, more
    than max_depth levels of nesting (counted from depth), more than max_nodes distinct
    objects or max_tensors tensors, more than max_elements tensor elements in all, or more
    than UNFOLD_FACTOR * max_nodes objects counting each reference (what the next walker
    of the reply would visit), is rejected. Reads only metadata: allocates nothing for a tensor.
    """
    budget = _Budget(max_nodes, max_elements, max_tensors)
    max_unfolded = UNFOLD_FACTOR * max_nodes
    height: dict[int, int] = {}  # id -> height of an object done (0 for a leaf); all stay alive meanwhile
    unfolded: dict[int, int] = {}  # id -> size of a container done, were its shared parts copied out
    open_ids: set[int] = set()  # ids of the containers on the path being walked
    # per open container: [id, iterator over its children, max child height, unfolded size so far]
    stack: list[list] = []

    def too_deep():
        return WireError(f"reply is nested more than {max_depth} levels deep")

    def too_shared():
        return WireError(f"reply unfolds into more than {max_unfolded} objects when its shared lists and dicts "
                         "are copied out (as anything that walks it would)")

    def visit(obj, at: int):
        """Account for obj (not a leaf) at depth at; return (height, unfolded size), or None after opening it."""
        key = id(obj)
        known = height.get(key)
        if known is not None:
            if at + known > max_depth:
                raise too_deep()
            return known, unfolded.get(key, 1)
        if key in open_ids:
            raise WireError("reply holds a list or dict that contains itself")
        kind = type(obj)
        budget.node()
        if kind is torch.Tensor:
            _check_tensor(obj, budget)
            height[key] = 0
            return 0, 1
        if kind is list or kind is tuple:
            children = iter(obj)
        elif kind is dict:
            children = _dict_values(obj, budget, height)
        else:
            raise WireError(f"reply holds a {kind.__name__}, which is not plain data")
        open_ids.add(key)
        stack.append([key, children, -1, 1])
        return None

    if depth > max_depth:
        raise too_deep()
    if type(value) in _LEAVES:
        return value
    visit(value, depth)
    while stack:
        frame = stack[-1]
        at = depth + len(stack)  # the depth of this container's children
        for child in frame[1]:
            if at > max_depth:
                raise too_deep()
            if type(child) in _LEAVES:  # the common case, inline
                key = id(child)
                if key not in height:
                    budget.node()
                    height[key] = 0
                if frame[2] < 0:
                    frame[2] = 0
                frame[3] += 1
                if frame[3] > max_unfolded:
                    raise too_shared()
                continue
            seen = visit(child, at)
            if seen is None:
                break  # walk the child just opened first; this iterator resumes after it
            if seen[0] > frame[2]:
                frame[2] = seen[0]
            frame[3] += seen[1]
            if frame[3] > max_unfolded:
                raise too_shared()
        else:
            stack.pop()
            key, _, child_height, size = frame
            open_ids.discard(key)
            height[key], unfolded[key] = child_height + 1, size
            if stack:
                parent = stack[-1]
                if child_height + 1 > parent[2]:
                    parent[2] = child_height + 1
                parent[3] += size
                if parent[3] > max_unfolded:
                    raise too_shared()
    return value


def _dict_values(obj: dict, budget: _Budget, height: dict):
    for key, item in obj.items():
        if type(key) is not str:
            raise WireError(f"reply has a dict key of type {type(key).__name__}")
        if id(key) not in height:  # keys are objects too
            budget.node()
            height[id(key)] = 0
        yield item


# --- the archive ----------------------------------------------------------------------
#
# torch.save writes a zip of stored (uncompressed) entries: <prefix>/data.pkl, the pickle;
# <prefix>/data/<key>, one per storage; and a few small files of metadata. It is read here
# by hand, not with zipfile: zipfile spends ~10 us and ~600 bytes on each entry of the
# directory before anything can be checked, tolerates bytes before the archive, and takes
# the last of two entries of the same name, where torch's own reader (miniz) may differ.
# zipfile then reads the archive too, and must see exactly the same entries.

_EOCD = struct.Struct("<4sHHHHIIH")  # end of central directory: 22 bytes
_ZIP64_LOCATOR = struct.Struct("<4sIQI")  # 20 bytes
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes + name + extra + comment
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes + name + extra
_METADATA = frozenset({"byteorder", "version", ".format_version", ".storage_alignment", ".data/version",
                       ".data/serialization_id"})
_MAX_METADATA = 1024  # bytes in one metadata file (they hold a word or a number)


def _read_archive(payload: bytes, max_entries: int) -> tuple[bytes, dict[str, int]]:
    """Check that payload is a torch.save archive whose entries fit in it; return the pickle's bytes
    and {storage key: record size}."""
    end = len(payload)
    if end < _EOCD.size + _LOCAL.size or payload[:4] != b"PK\x03\x04":
        raise WireError("reply is not a torch.save archive (no zip header: truncated, or another format)")
    sig, disk, cd_disk, on_disk, total, cd_size, cd_offset, comment = _EOCD.unpack_from(payload, end - _EOCD.size)
    if sig != b"PK\x05\x06" or comment:
        raise WireError("reply archive is truncated or has bytes after its end")
    if disk or cd_disk or on_disk != total:
        raise WireError("reply archive claims to span several disks")
    cd_end = end - _EOCD.size
    locator_at = cd_end - _ZIP64_LOCATOR.size
    if locator_at >= 0 and payload[locator_at:locator_at + 4] == b"PK\x06\x07":
        _, z_disk, record_at, z_disks = _ZIP64_LOCATOR.unpack_from(payload, locator_at)
        if record_at != locator_at - _ZIP64_EOCD.size or z_disk != 0 or z_disks > 1:
            raise WireError("reply archive has a misplaced zip64 end record")
        (sig, size, _, _, disk, cd_disk, on_disk64, total64, cd_size64,
         cd_offset64) = _ZIP64_EOCD.unpack_from(payload, record_at)
        if sig != b"PK\x06\x06" or size != _ZIP64_EOCD.size - 12 or disk or cd_disk or on_disk64 != total64:
            raise WireError("reply archive has a malformed zip64 end record")
        for small, big, sentinel in ((total, total64, 0xFFFF), (cd_size, cd_size64, 0xFFFFFFFF),
                                     (cd_offset, cd_offset64, 0xFFFFFFFF)):
            if small != sentinel and small != big:
                raise WireError("reply archive's two end records disagree")
        total, cd_size, cd_offset, cd_end = total64, cd_size64, cd_offset64, record_at
    elif 0xFFFF == total or 0xFFFFFFFF in (cd_size, cd_offset):
        raise WireError("reply archive lacks its zip64 end record")
    if cd_offset + cd_size != cd_end:
        raise WireError("reply archive's directory is not where its end record says (bytes added or cut)")
    if total > max_entries:
        raise WireError(f"reply archive has {total} entries, more than the limit of {max_entries}")

    entries = []  # (name, local header offset, size, data offset)
    names: set[str] = set()
    pos, stored = cd_offset, 0
    for _ in range(total):
        if pos + _CENTRAL.size > cd_end:
            raise WireError("reply archive's directory is cut short")
        (sig, _, _, flags, method, _, _, _, csize, usize, name_len, extra_len, comment_len, disk_start, _, _,
         local_at) = _CENTRAL.unpack_from(payload, pos)
        raw_name = payload[pos + _CENTRAL.size:pos + _CENTRAL.size + name_len]
        pos += _CENTRAL.size + name_len + extra_len + comment_len
        if sig != b"PK\x01\x02" or pos > cd_end or len(raw_name) != name_len:
            raise WireError("reply archive's directory is malformed")
        try:
            name = raw_name.decode("ascii")
        except UnicodeDecodeError:
            raise WireError("reply archive has an entry whose name is not ASCII") from None
        if flags & 0x41:
            raise WireError(f"reply archive entry {name!r} is encrypted")
        if method != zipfile.ZIP_STORED:
            raise WireError(f"reply archive entry {name!r} is compressed (torch.save stores entries uncompressed)")
        if csize != usize or 0xFFFFFFFF in (usize, local_at) or disk_start:
            raise WireError(f"reply archive entry {name!r} claims {usize} bytes, which its archive does not hold")
        if name.lower() in names:
            raise WireError(f"reply archive has two entries named {name!r}")
        names.add(name.lower())
        stored += usize
        if stored > end:
            raise WireError(f"reply archive's entries claim more bytes than the whole reply ({end})")
        if local_at + _LOCAL.size > cd_offset:
            raise WireError(f"reply archive entry {name!r} starts outside the archive")
        (sig, _, _, local_method, _, _, _, _, _, local_name_len,
         local_extra_len) = _LOCAL.unpack_from(payload, local_at)
        data_at = local_at + _LOCAL.size + local_name_len + local_extra_len
        if (sig != b"PK\x03\x04" or local_method != method
                or payload[local_at + _LOCAL.size:local_at + _LOCAL.size + local_name_len] != raw_name):
            raise WireError(f"reply archive entry {name!r} has a local header that disagrees with the directory")
        if data_at + usize > cd_offset:
            raise WireError(f"reply archive entry {name!r} claims {usize} bytes, which its archive does not hold")
        entries.append((name, local_at, usize, data_at))
    if pos != cd_end:
        raise WireError("reply archive's directory has bytes its end record does not count")

    # torch's reader takes the folder of the first entry as the archive's name.
    prefix = entries[0][0].split("/", 1)[0] + "/" if entries else ""
    pickle_bytes, records = None, {}
    for name, _, size, data_at in entries:
        inner = name[len(prefix):] if name.startswith(prefix) else None
        if inner == "data.pkl":
            pickle_bytes = payload[data_at:data_at + size]
        elif inner in _METADATA:
            if size > _MAX_METADATA:
                raise WireError(f"reply archive entry {name!r} is {size} bytes, too large for metadata")
            if inner == "byteorder" and payload[data_at:data_at + size] != b"little":
                raise WireError("reply archive is not little-endian")
        elif inner and inner.startswith("data/") and len(inner) > 5 and "/" not in inner[5:]:
            records[inner[5:]] = size
        else:
            raise WireError(f"reply archive has an entry {name!r} that torch.save does not write")
    if pickle_bytes is None:
        raise WireError("reply archive has no data.pkl")

    # The same archive through zipfile: the two readers must agree entry for entry.
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            theirs = [(i.filename, i.header_offset, i.file_size, i.compress_type) for i in archive.infolist()]
    except Exception as err:
        raise WireError(f"reply archive is corrupt ({type(err).__name__}: {_first_line(err)})") from None
    if theirs != [(name, local_at, size, zipfile.ZIP_STORED) for name, local_at, size, _ in entries]:
        raise WireError("reply archive reads differently with zipfile (a forged directory?)")
    return pickle_bytes, records


# --- the pickle -------------------------------------------------------------------------

# Opcodes torch.save (protocol 2) emits for plain data and dense tensors, with the bytes of their
# argument; nothing else is read. (See pickletools for what each one does.)
_FIXED_ARGS = {ord(code): length for code, length in (
    (pickle.MARK, 0), (pickle.STOP, 0), (pickle.NONE, 0), (pickle.NEWTRUE, 0), (pickle.NEWFALSE, 0),
    (pickle.BININT, 4), (pickle.BININT1, 1), (pickle.BININT2, 2), (pickle.BINFLOAT, 8),
    (pickle.EMPTY_LIST, 0), (pickle.APPEND, 0), (pickle.APPENDS, 0),
    (pickle.EMPTY_TUPLE, 0), (pickle.TUPLE, 0), (pickle.TUPLE1, 0), (pickle.TUPLE2, 0), (pickle.TUPLE3, 0),
    (pickle.EMPTY_DICT, 0), (pickle.SETITEM, 0), (pickle.SETITEMS, 0),
    (pickle.BINGET, 1), (pickle.LONG_BINGET, 4), (pickle.REDUCE, 0), (pickle.BINPERSID, 0))}
_PROTO, _STOP, _BINPUT, _LONG_BINPUT, _LONG1, _LONG4, _BINUNICODE, _GLOBAL = (
    ord(pickle.PROTO), ord(pickle.STOP), ord(pickle.BINPUT), ord(pickle.LONG_BINPUT), ord(pickle.LONG1),
    ord(pickle.LONG4), ord(pickle.BINUNICODE), ord(pickle.GLOBAL))
_REBUILD_V2, _REBUILD_V3 = "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_tensor_v3"
_STORAGES = {  # legacy storage class -> dtype, as torch.save names them
    "BoolStorage": torch.bool, "ByteStorage": torch.uint8, "CharStorage": torch.int8,
    "ShortStorage": torch.int16, "IntStorage": torch.int32, "LongStorage": torch.int64,
    "HalfStorage": torch.float16, "BFloat16Storage": torch.bfloat16, "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
}
_DTYPES = {str(dtype).removeprefix("torch."): dtype for dtype in PLAIN_DTYPES}  # for _rebuild_tensor_v3
_GLOBALS = frozenset(
    {_REBUILD_V2, _REBUILD_V3, "collections OrderedDict", "torch.storage UntypedStorage"}
    | {f"torch {name}" for name in _STORAGES} | {f"torch {name}" for name in _DTYPES})
_REFUSED = {  # what a refused global means, for the message
    "_rebuild_sparse_tensor": "a sparse tensor", "_rebuild_sparse_csr_tensor": "a sparse tensor",
    "_rebuild_qtensor": "a quantized tensor", "_rebuild_meta_tensor_no_storage": "a tensor on the meta device",
    "_rebuild_nested_tensor": "a nested tensor", "_rebuild_parameter": "a torch.nn.Parameter",
    "_rebuild_parameter_with_state": "a torch.nn.Parameter", "_rebuild_from_type_v2": "a tensor subclass",
    "_rebuild_wrapper_subclass": "a tensor subclass", "_rebuild_device_tensor_from_numpy": "a non-CPU tensor",
    "_rebuild_device_tensor_from_cpu_tensor": "a non-CPU tensor", "_rebuild_xla_tensor": "a non-CPU tensor",
    "_rebuild_mtia_tensor": "a non-CPU tensor",
}


def _refused_global(name: str) -> str:
    module, _, attr = name.partition(" ")
    module = "builtins" if module == "__builtin__" else module  # as protocol 2 names them
    if attr in _REFUSED:
        return _REFUSED[attr]
    if module == "torch" and attr.endswith("Storage"):
        if attr.startswith("Complex"):
            return "a complex tensor"
        if attr.startswith("Q"):
            return "a quantized tensor"
        return f"a tensor of a dtype that is not plain ({attr})"
    return f"a {module}.{attr}"


def _scan_pickle(data: bytes, max_ops: int) -> None:
    """Read the pickle's opcodes without building anything; raise WireError at the first that a
    plain reply would not have. Linear in its length; stops after max_ops opcodes."""
    fixed, at, puts = _FIXED_ARGS, 0, 0
    try:
        for _ in range(max_ops):
            op = data[at]
            length = fixed.get(op)
            if length is not None:
                if op == _STOP:
                    return
                at += 1 + length
            elif op == _BINPUT or op == _LONG_BINPUT:
                index = data[at + 1] if op == _BINPUT else struct.unpack_from("<I", data, at + 1)[0]
                if index > puts:  # the pickler numbers its memo 0, 1, 2...: a far index only costs memory
                    raise WireError("reply's pickle uses memo slots out of order")
                puts += index == puts
                at += 2 if op == _BINPUT else 5
            elif op == _BINUNICODE:
                at += 5 + struct.unpack_from("<I", data, at + 1)[0]
            elif op == _LONG1:
                at += 2 + data[at + 1]
            elif op == _GLOBAL:
                module_end = data.index(b"\n", at + 1)
                name_end = data.index(b"\n", module_end + 1)
                name = data[at + 1:module_end].decode("ascii") + " " + data[module_end + 1:name_end].decode("ascii")
                if name not in _GLOBALS:
                    raise WireError(f"reply holds {_refused_global(name)}, which is not plain data")
                at = name_end + 1
            elif op == _PROTO:
                if data[at + 1] != 2:
                    raise WireError(f"reply's pickle is of protocol {data[at + 1]}, not 2 (not written by "
                                    "encode_reply)")
                at += 2
            elif op == _LONG4:
                raise WireError("reply holds an integer of more than 2040 bits")
            else:
                known = pickletools.code2op.get(chr(op))
                what = f"the {known.name} operation" if known else f"an unknown opcode {op:#x}"
                raise WireError(f"reply's pickle uses {what}, which torch.save does not emit for plain data")
        else:
            raise WireError(f"reply is too large: its pickle has more than {max_ops} operations")
    except WireError:
        raise
    except (IndexError, ValueError, struct.error):  # ran off the end, or a GLOBAL line without its end
        pass
    raise WireError("reply's pickle is truncated or corrupt")


class _StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


class _Storage:
    def __init__(self, dtype, nbytes: int):
        self.dtype, self.nbytes = dtype, nbytes


class _Hooks:
    """Stands in for the empty OrderedDict of backward hooks that torch.save writes with a tensor."""


class _TensorStub:
    pass


class _DryRun(pickle.Unpickler):
    """Unpickle a scanned pickle with stand-ins for storages and tensors: reads no tensor data and
    allocates nothing the claims ask for, but checks each claim against the archive."""

    def __init__(self, data: bytes, records: dict[str, int], budget: _Budget):
        super().__init__(io.BytesIO(data), fix_imports=False)
        self.records, self.budget, self.storages = records, budget, {}

    def find_class(self, module, name):
        full = f"{module} {name}"
        if full == _REBUILD_V2:
            return self.rebuild_v2
        if full == _REBUILD_V3:
            return self.rebuild_v3
        if full == "collections OrderedDict":
            return self.hooks
        if full == "torch.storage UntypedStorage":
            return _StorageType(torch.uint8)
        if module == "torch" and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        raise WireError(f"reply holds {_refused_global(full)}, which is not plain data")

    def persistent_load(self, pid):
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage":
            raise WireError("reply's pickle refers to something other than a storage")
        _, storage_type, key, _location, numel = pid
        if type(storage_type) is not _StorageType or type(key) is not str or type(numel) is not int:
            raise WireError("reply's pickle describes a storage oddly")
        if key in self.storages:  # torch.load keeps the first storage of a key
            return self.storages[key]
        if key not in self.records:
            raise WireError(f"reply's pickle refers to storage {key!r}, which the archive lacks")
        nbytes = numel * storage_type.dtype.itemsize
        if nbytes != self.records[key]:
            raise WireError(f"reply's storage {key!r} claims {nbytes} bytes but the archive holds "
                            f"{self.records[key]}")
        self.storages[key] = storage = _Storage(storage_type.dtype, nbytes)
        return storage

    def hooks(self, *args):
        if args:
            raise WireError("reply holds a tensor with backward hooks")
        return _Hooks()

    def rebuild_v2(self, storage, offset, size, stride, requires_grad, hooks, metadata=None):
        return self.rebuild_v3(storage, offset, size, stride, requires_grad, hooks,
                               getattr(storage, "dtype", None), metadata)

    def rebuild_v3(self, storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
        if type(storage) is not _Storage:
            raise WireError("reply's pickle builds a tensor without a storage")
        if dtype not in PLAIN_DTYPES:
            raise WireError(f"reply holds a tensor of dtype {dtype} (only float, int and bool tensors are plain)")
        if metadata:
            raise WireError("reply holds a tensor with a lazy negation or conjugation bit")
        if type(hooks) is not _Hooks or type(requires_grad) is not bool:
            raise WireError("reply's pickle builds a tensor oddly")
        if (type(offset) is not int or type(size) is not tuple or type(stride) is not tuple
                or any(type(n) is not int for n in size + stride)):
            raise WireError("reply's pickle gives a tensor sizes or strides that are not integers")
        self.budget.tensor(_check_extent(size, stride, offset, storage.nbytes, dtype.itemsize))
        return _TensorStub()


def _first_line(err: BaseException) -> str:
    lines = str(err).splitlines()
    return lines[0][:200] if lines else type(err).__name__


def decode_reply(payload: bytes, *, max_frame: int = MAX_FRAME, max_nodes: int = MAX_NODES,
                 max_elements: int = MAX_ELEMENTS, max_tensors: int = MAX_TENSORS, max_depth: int = MAX_DEPTH):
    """Read a worker's reply (encode_reply's bytes) as plain data, or raise WireError saying why not.

    The limits bound what a hostile reply can cost: max_frame bytes in all; max_nodes distinct
    objects; max_tensors tensors of max_elements elements in all; max_depth levels of nesting.
    Time is linear in the frame, and at most 4 pickle operations per node and 32 per tensor
    are read. Memory stays within a few times the frame (the frame, torch.load's copy of each
    record, and what it builds): nothing is allocated for what a reply only claims.
    """
    if type(payload) is not bytes:
        payload = bytes(payload)
    if len(payload) > max_frame:
        raise WireError(f"reply of {len(payload)} bytes is larger than the limit of {max_frame}")
    pickle_bytes, records = _read_archive(payload, max_entries=max_tensors + len(_METADATA) + 1)
    _scan_pickle(pickle_bytes, max_ops=OPS_PER_NODE * max_nodes + OPS_PER_TENSOR * max_tensors)
    try:
        _DryRun(pickle_bytes, records, _Budget(max_nodes, max_elements, max_tensors)).load()
    except WireError:
        raise
    except Exception as err:
        raise WireError(f"reply's pickle is malformed ({type(err).__name__}: {_first_line(err)})") from None
    del pickle_bytes  # torch.load reads its own copy
    try:
        value = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as err:  # an UnpicklingError for anything not allow-listed
        raise WireError(f"reply is not plain data ({type(err).__name__}: {_first_line(err)})") from None
    return check_plain(value, max_nodes=max_nodes, max_elements=max_elements, max_tensors=max_tensors,
                       max_depth=max_depth)
