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

Steps 2 to 4 are ``grader.sandbox.archive``'s.
"""
from __future__ import annotations

import io
import pickle
import struct
import threading
import time

import torch

from grader.sandbox.archive import (
    _METADATA,
    PLAIN_DTYPES,
    WireError,
    _Budget,
    _check_extent,
    _DryRun,
    _first_line,
    _read_archive,
    _scan_pickle,
)

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
