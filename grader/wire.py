"""What crosses between the judge and the sandboxed worker, and how.

Frames are a 4-byte big-endian length and a payload. The judge sends requests
as pickles (the worker may unpickle what the judge sends: the judge is trusted).
The worker answers with ``torch.save`` bytes that the judge reads with
``torch.load(weights_only=True)``, which rebuilds tensors, numbers, strings,
lists and dicts and executes nothing; ``check_plain`` then rejects anything else,
tensor subclasses included. The judge never unpickles what the worker sends.
"""
from __future__ import annotations

import io
import pickle
import struct
import time

import torch

MAX_FRAME = 256 * 1024 * 1024  # a reply larger than this is a misbehaving worker


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


def recv_frame(sock, deadline: float | None = None) -> bytes:
    (length,) = struct.unpack(">I", recv_exactly(sock, 4, deadline))
    if length > MAX_FRAME:
        raise WireError(f"frame of {length} bytes is larger than the limit of {MAX_FRAME}")
    return recv_exactly(sock, length, deadline)


# --- judge -> worker ----------------------------------------------------------------

def encode_request(request: dict) -> bytes:
    return pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)


def decode_request(payload: bytes) -> dict:
    return pickle.loads(payload)  # noqa: S301 -- only the trusted judge writes requests


# --- worker -> judge ----------------------------------------------------------------

def to_plain(value):
    """Turn a value into plain data (run in the worker before sending).

    Tensors become plain CPU ``torch.Tensor`` (a subclass is cast down), tuples
    become lists; numbers, strings, None, lists and str-keyed dicts pass.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone().as_subclass(torch.Tensor)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    raise TypeError(f"cannot send a {type(value).__name__} to the grader")


def encode_reply(reply) -> bytes:
    buffer = io.BytesIO()
    torch.save(reply, buffer)
    return buffer.getvalue()


def check_plain(value, depth: int = 0):
    """Raise WireError unless value is plain data (exact types, bounded nesting)."""
    if depth > 20:
        raise WireError("reply is nested too deeply")
    kind = type(value)
    if kind is torch.Tensor or kind in (bool, int, float, str) or value is None:
        return value
    if kind in (list, tuple):
        for item in value:
            check_plain(item, depth + 1)
        return value
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise WireError(f"reply has a dict key of type {type(key).__name__}")
            check_plain(item, depth + 1)
        return value
    raise WireError(f"reply holds a {kind.__name__}, which is not plain data")


def decode_reply(payload: bytes):
    try:
        value = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as err:  # an UnpicklingError for anything not allow-listed
        raise WireError(f"reply is not plain data ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    return check_plain(value)
