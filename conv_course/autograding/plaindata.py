"""Plain data across a trust boundary: the codec of the trusted re-check.

Values cross between the grader and the processes that run student code as a JSON tree plus an
uncompressed ``.npz`` of arrays. Only numbers, strings, None, arrays (and tensors, as arrays) and
lists, tuples and dicts of them can cross: no pickle, no object, no code. Everything read back
is validated before it is used: file type (no links, FIFOs or devices), file size, each array's
size and the total *before* anything is inflated, nesting depth and every node of the tree.
"""

import io
import json
import math
import os
import stat
import zipfile

import numpy as np

__all__ = ["Unencodable", "Limits", "encode", "decode", "same", "write_bundle", "read_bundle", "read_regular",
           "regular_files"]

_MAX_DEPTH = 32


class Unencodable(TypeError):
    """A value that is not plain data (numbers, strings, arrays, tensors and containers of them)."""


class Limits:
    """What `read_bundle` accepts: bytes per file, arrays, bytes per array and in all, tree nodes."""

    def __init__(self, file_bytes=256 << 20, arrays=100_000, array_bytes=64 << 20, total_bytes=256 << 20,
                 nodes=1_000_000):
        self.file_bytes, self.arrays, self.array_bytes = file_bytes, arrays, array_bytes
        self.total_bytes, self.nodes = total_bytes, nodes


def encode(value, arrays, depth=0, refs=None):
    """A JSON-able tree for `value`; arrays are appended to `arrays` (copied) and referenced by index.

    `refs` maps id(obj) -> name for objects that cross by name (a student's function or class,
    passed to a probe): they become {"t": "ref", "n": name}.
    """
    if depth > _MAX_DEPTH:
        raise Unencodable("nested too deeply")
    if refs and id(value) in refs:
        return {"t": "ref", "n": refs[id(value)]}
    if value is None:
        return {"t": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"t": "int", "v": str(int(value))}
    if isinstance(value, (float, np.floating)):
        return {"t": "float", "v": float(value).hex()}
    if isinstance(value, str):
        return {"t": "str", "v": str(value)}
    kind = "array"
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        value, kind = value.detach().cpu().numpy(), "tensor"
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject or value.dtype.kind not in "biufc":
            raise Unencodable(f"array of dtype {value.dtype}")
        arrays.append(np.array(value, copy=True))
        return {"t": kind, "i": len(arrays) - 1}
    if isinstance(value, (list, tuple)):
        return {"t": "list" if isinstance(value, list) else "tuple",
                "v": [encode(x, arrays, depth + 1, refs) for x in value]}
    if isinstance(value, dict):
        items = list(value.items())
        return {"t": "dict", "k": [encode(k, arrays, depth + 1, refs) for k, _ in items],
                "v": [encode(v, arrays, depth + 1, refs) for _, v in items]}
    raise Unencodable(type(value).__name__)


def decode(node, arrays, depth=0, tensors=False, resolve=None):
    """Inverse of `encode`, validating every node (the tree may come from student code).

    With `tensors`, nodes encoded from tensors come back as CPU tensors (torch imported on demand);
    `resolve(name)` gives the object of a "ref" node (without it, a ref is malformed data).
    """
    if depth > _MAX_DEPTH or not isinstance(node, dict):
        raise ValueError("malformed data")
    t, v = node.get("t"), node.get("v")
    if t == "ref" and resolve is not None and isinstance(node.get("n"), str):
        return resolve(node["n"])
    if t == "none":
        return None
    if t == "bool" and isinstance(v, bool):
        return v
    if t == "int" and isinstance(v, str) and len(v) < 400:
        return int(v)
    if t == "float" and isinstance(v, str) and len(v) < 64:
        return float.fromhex(v)
    if t == "str" and isinstance(v, str):
        return v
    if t in ("array", "tensor"):
        i = node.get("i")
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(arrays):
            raise ValueError("bad array index")
        arr = np.array(arrays[i], copy=True)
        if t == "tensor" and tensors:
            import torch

            return torch.from_numpy(arr)
        return arr
    if t in ("list", "tuple") and isinstance(v, list):
        items = [decode(x, arrays, depth + 1, tensors, resolve) for x in v]
        return items if t == "list" else tuple(items)
    if t == "dict" and isinstance(v, list) and isinstance(node.get("k"), list) and len(v) == len(node["k"]):
        keys = [decode(k, arrays, depth + 1, tensors, resolve) for k in node["k"]]
        return dict(zip([tuple(k) if isinstance(k, list) else k for k in keys],
                        [decode(x, arrays, depth + 1, tensors, resolve) for x in v]))
    raise ValueError(f"malformed data node {t!r}")


def same(want, got, rtol=1e-5, atol=1e-8):
    """Whether `got` equals the reference `want`: same structure, shapes, and values to tolerance."""
    want, got = (v.item() if isinstance(v, np.generic) else v for v in (want, got))
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        try:
            a, b = np.asarray(want), np.asarray(got)
        except (ValueError, TypeError):
            return False
        if a.dtype.kind not in "biufc" or b.dtype.kind not in "biufc" or a.shape != b.shape:
            return False
        if "b" in (a.dtype.kind, b.dtype.kind):
            return a.dtype.kind == b.dtype.kind and bool(np.array_equal(a, b))
        scale = float(np.max(np.abs(a))) if a.size else 0.0
        return bool(np.allclose(b, a, rtol=rtol, atol=atol + 1e-6 * scale, equal_nan=True))
    if want is None or isinstance(want, (bool, str)):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return False
        return (math.isnan(want) and math.isnan(got)) or math.isclose(got, want, rel_tol=rtol, abs_tol=atol)
    if isinstance(want, (list, tuple)):
        return (isinstance(got, (list, tuple)) and len(got) == len(want)
                and all(same(w, g, rtol, atol) for w, g in zip(want, got)))
    if isinstance(want, dict):
        return (isinstance(got, dict) and set(got) == set(want)
                and all(same(want[k], got[k], rtol, atol) for k in want))
    return False


def write_bundle(folder, name, obj, arrays, in_place=False):
    """Write `name`.json and `name`.npz (uncompressed) into `folder`, each replaced atomically, or,
    `in_place`, written into the existing files (a folder the writer may not create files in)."""
    writers = ((".npz", lambda f: np.savez(f, *arrays)), (".json", lambda f: f.write(json.dumps(obj).encode())))
    for ext, write in writers:
        path = os.path.join(folder, name + ext)
        with open(path if in_place else os.path.join(folder, f".{name}{ext}.tmp"), "wb") as f:
            write(f)
        if not in_place:
            os.replace(f.name, path)


def read_regular(path, max_bytes):
    """The bytes of `path`, refusing links (OSError), special files and files over `max_bytes`
    (ValueError; the size is what was read, not what fstat said, so a growing file is refused too)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{os.path.basename(path)} is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(f"{os.path.basename(path)} is larger than {max_bytes} bytes")
    return data


def regular_files(folder, refused, max_files):
    """(relative path, absolute path) of the regular files under `folder`, links never followed.

    Links, FIFOs, sockets and devices are not read: each is listed in `refused` (a list). Stops
    after `max_files` files (the rest is refused as a whole), so a huge folder cannot stall the reader.
    """
    out, stack = [], [""]
    while stack:
        rel_dir = stack.pop()
        try:
            entries = sorted(os.scandir(os.path.join(folder, rel_dir)), key=lambda e: e.name)
        except OSError as err:
            refused.append(f"{rel_dir or '.'}: unreadable folder ({err.strerror})")
            continue
        for entry in entries:
            rel = os.path.join(rel_dir, entry.name)
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                refused.append(f"{rel}: a symbolic link (not followed)")
            elif stat.S_ISDIR(mode):
                stack.append(rel)
            elif not stat.S_ISREG(mode):
                refused.append(f"{rel}: a special file (FIFO, socket or device; not read)")
            elif len(out) >= max_files:
                refused.append(f"more than {max_files} files: the rest was not read")
                return out
            else:
                out.append((rel, os.path.join(folder, rel)))
    return out


def _count_nodes(tree, limit):
    stack, n = [tree], 0
    while stack:
        node = stack.pop()
        n += 1
        if n > limit:
            raise ValueError(f"more than {limit} data nodes")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _load_arrays(data, limits):
    """Arrays of an .npz, each size-checked from its zip header and its .npy header before reading."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise ValueError(f"not an npz archive: {err}") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.arrays:
            raise ValueError(f"more than {limits.arrays} arrays")
        names = {info.filename: info for info in infos}
        total = 0
        arrays = []
        for i in range(len(infos)):
            info = names.get(f"arr_{i}.npy")
            if info is None:
                raise ValueError(f"array {i} missing")
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise ValueError("compressed arrays are not accepted")
            total += info.file_size
            if info.file_size > limits.array_bytes or total > limits.total_bytes:
                raise ValueError(f"arrays larger than {limits.array_bytes} bytes each or {limits.total_bytes} "
                                 "in all are not accepted")
            with zf.open(info) as f:
                arrays.append(_read_npy(f.read(info.file_size + 1)))
    return arrays


def _read_npy(data):
    """One .npy file whose header must describe exactly the bytes that follow (checked first)."""
    fmt = np.lib.format
    f = io.BytesIO(data)
    version = fmt.read_magic(f)
    read_header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"npy version {version} is not accepted")
    shape, fortran, dtype = read_header(f)
    if dtype.hasobject:
        raise ValueError("arrays of Python objects (pickles) are not accepted")
    if len(data) - f.tell() != math.prod(shape) * dtype.itemsize:
        raise ValueError("an array's header does not match its data")
    f.seek(0)
    return fmt.read_array(f, allow_pickle=False)


def read_bundle(folder, name, limits=None):
    """Read what `write_bundle` wrote; raise ValueError (or OSError) on anything else.

    Refuses links, special files, oversize files, compressed or oversize arrays (checked before
    inflating), pickles, deep or huge trees.
    """
    limits = limits or Limits()
    if os.path.isfile(os.path.join(folder, name + ".json")) and not os.path.getsize(os.path.join(folder, name + ".json")):
        raise FileNotFoundError(f"{name}.json is empty: nothing was written")
    try:
        obj = json.loads(read_regular(os.path.join(folder, name + ".json"), limits.file_bytes).decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{name}.json is not JSON: {str(err)[:100]}") from None
    if not isinstance(obj, dict):
        raise ValueError("malformed bundle")
    _count_nodes(obj, limits.nodes)
    arrays = _load_arrays(read_regular(os.path.join(folder, name + ".npz"), limits.file_bytes), limits)
    return obj, arrays
