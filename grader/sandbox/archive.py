"""A worker's reply read before ``torch.load`` sees it: steps 2 to 4 of ``grader.sandbox.wire``'s list.

``_read_archive`` reads the zip's directory by hand and checks that it is what ``torch.save`` writes;
``_scan_pickle`` lists the pickle's opcodes without building anything; ``_DryRun`` unpickles it with
stand-ins for storages and tensors and checks each claim against the archive. Also here, as ``wire``
uses them too: ``WireError``, the plain dtypes, a tensor's extent check and the reply's budget.
"""
from __future__ import annotations

import io
import pickle
import pickletools
import struct
import zipfile

import torch

PLAIN_DTYPES = frozenset(
    [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64,
     torch.float16, torch.bfloat16, torch.float32, torch.float64]
    + [getattr(torch, name) for name in ("uint16", "uint32", "uint64") if hasattr(torch, name)])


class WireError(Exception):
    """The other side sent something that is not a valid frame or plain data."""


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


def _first_line(err: BaseException) -> str:
    lines = str(err).splitlines()
    return lines[0][:200] if lines else type(err).__name__


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
