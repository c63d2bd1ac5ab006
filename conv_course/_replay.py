"""The process side of the trusted re-check (`conv_course.trusted`): a plain-data codec and a runner.

``python -m conv_course._replay record BOX`` runs the instructor's cells and records each test
cell's calls; ``python -m conv_course._replay replay BOX`` (in the sandbox) runs a student's
cells and makes the recorded calls again. Data crosses the process boundary as JSON plus an
uncompressed .npz read with ``allow_pickle=False``: nothing the student writes is ever unpickled.
"""

import ast
import builtins
import functools
import json
import math
import os
import stat
import sys

import numpy as np

__all__ = ["Unencodable", "encode", "decode", "same", "write_bundle", "read_bundle", "new_roots"]

_MAX_DEPTH = 32
_MAX_ARRAYS = 100_000


class Unencodable(TypeError):
    """A value that is not plain data (numbers, strings, arrays, tensors and containers of them)."""


def encode(value, arrays, depth=0):
    """A JSON-able tree for `value`; arrays are appended to `arrays` (copied) and referenced by index."""
    if depth > _MAX_DEPTH:
        raise Unencodable("nested too deeply")
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
                "v": [encode(x, arrays, depth + 1) for x in value]}
    if isinstance(value, dict):
        items = list(value.items())
        return {"t": "dict", "k": [encode(k, arrays, depth + 1) for k, _ in items],
                "v": [encode(v, arrays, depth + 1) for _, v in items]}
    raise Unencodable(type(value).__name__)


def decode(node, arrays, depth=0, tensors=False):
    """Inverse of `encode`, validating every node (the tree may come from student code)."""
    if depth > _MAX_DEPTH or not isinstance(node, dict):
        raise ValueError("malformed data")
    t, v = node.get("t"), node.get("v")
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
        items = [decode(x, arrays, depth + 1, tensors) for x in v]
        return items if t == "list" else tuple(items)
    if t == "dict" and isinstance(v, list) and isinstance(node.get("k"), list) and len(v) == len(node["k"]):
        keys = [decode(k, arrays, depth + 1, tensors) for k in node["k"]]
        return dict(zip([tuple(k) if isinstance(k, list) else k for k in keys],
                        [decode(x, arrays, depth + 1, tensors) for x in v]))
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


def write_bundle(folder, name, obj, arrays):
    """Write `name`.json and `name`.npz (uncompressed) into `folder`, each replaced atomically."""
    writers = ((".npz", lambda f: np.savez(f, *arrays)), (".json", lambda f: f.write(json.dumps(obj).encode())))
    for ext, write in writers:
        tmp = os.path.join(folder, f".{name}{ext}.tmp")
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, os.path.join(folder, name + ext))


def _open_regular(path, max_bytes):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    f = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        f.close()
        raise ValueError(f"{os.path.basename(path)} is not a regular file under {max_bytes} bytes")
    return f


def read_bundle(folder, name, max_bytes=1 << 30):
    """Read what `write_bundle` wrote, refusing links, special files, oversize files and pickles."""
    with _open_regular(os.path.join(folder, name + ".json"), max_bytes) as f:
        obj = json.loads(f.read().decode())
    with _open_regular(os.path.join(folder, name + ".npz"), max_bytes) as f:
        with np.load(io_bytes(f.read()), allow_pickle=False) as z:
            if len(z.files) > _MAX_ARRAYS:
                raise ValueError("too many arrays")
            arrays = [z[f"arr_{i}"] for i in range(len(z.files))]
    if not isinstance(obj, dict):
        raise ValueError("malformed bundle")
    return obj, arrays


def io_bytes(data):
    import io

    return io.BytesIO(data)


class _Shell:
    """Stands in for get_ipython() so that cells with magics still define their functions."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _exec_cell(source, ns):
    if any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    try:
        exec(compile(source, "<cell>", "exec"), ns)
    except BaseException:  # noqa: B036  a failing student cell must not stop the others
        pass


def _recorder(name, fn, log, depth, arrays):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if depth[0]:
            return fn(*args, **kwargs)
        entry = {"name": name}
        try:
            entry["args"], entry["kwargs"] = encode(list(args), arrays), encode(dict(kwargs), arrays)
        except Unencodable as err:
            entry["unencodable"] = f"argument of type {err}"
        depth[0] += 1
        try:
            result = fn(*args, **kwargs)
        except BaseException as err:
            entry["outcome"] = {"kind": "raise", "types": [c.__name__ for c in type(err).__mro__]}
            log.append(entry)
            raise
        finally:
            depth[0] -= 1
        try:
            entry["outcome"] = {"kind": "return", "value": encode(result, arrays)}
        except Unencodable as err:
            entry["unencodable"] = f"result of type {err}"
        log.append(entry)
        return result
    return wrapper


def _record_cell(source, ns, names, arrays):
    log, depth, originals = [], [0], {}
    loaded = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)} & names
    if any(isinstance(ns.get(n), type) for n in loaded):
        return {"status": "unverifiable", "reason": "the test uses a class the student defines"}
    for name in names:
        if callable(ns.get(name)) and not isinstance(ns[name], type):
            originals[name] = ns[name]
            ns[name] = _recorder(name, ns[name], log, depth, arrays)
    try:
        exec(compile(source, "<test cell>", "exec"), ns)
    except BaseException as err:  # noqa: B036
        return {"status": "unverifiable", "reason": f"reference run failed: {type(err).__name__}: {err}"[:300]}
    finally:
        ns.update(originals)
    bad = [e["unencodable"] for e in log if "unencodable" in e]
    values = {}
    for name in sorted(loaded - set(originals)):
        try:
            values[name] = encode(ns[name], arrays)
        except (Unencodable, KeyError):
            bad.append(f"value `{name}`")
    if bad:
        return {"status": "unverifiable", "reason": "not plain data: " + bad[0]}
    if not log and not values:
        return {"status": "unverifiable", "reason": "the test calls nothing the student defines"}
    return {"status": "ok", "reason": "", "values": values,
            "calls": [{k: e[k] for k in ("name", "args", "kwargs", "outcome")} for e in log]}


def _replay_cell(plan, arrays, ns, out_arrays):
    results = []
    tensors = "tensor" in json.dumps(plan)
    for call in plan["calls"]:
        fn = ns.get(call["name"])
        if not callable(fn):
            results.append({"kind": "missing"})
            continue
        args, kwargs = decode(call["args"], arrays, tensors=tensors), decode(call["kwargs"], arrays, tensors=tensors)
        try:
            value = fn(*args, **kwargs)
        except BaseException as err:  # noqa: B036
            results.append({"kind": "raise", "types": [c.__name__ for c in type(err).__mro__]})
            continue
        try:
            results.append({"kind": "return", "value": encode(value, out_arrays)})
        except Unencodable:
            results.append({"kind": "unencodable"})
    values = {}
    for name in plan.get("values", {}):
        try:
            values[name] = encode(ns[name], out_arrays)
        except (Unencodable, KeyError):
            pass
    return {"calls": results, "values": values}


def main(mode, box):
    job, arrays = read_bundle(box, "job")
    sys.path.insert(0, os.getcwd())  # like a kernel: the submission's own modules import
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # student prints go nowhere; only the bundle counts
    ns = {"__name__": "__main__", "__builtins__": builtins, "get_ipython": _Shell}
    names, cells, out_arrays = set(job.get("names", [])), {}, []
    modules = new_roots(set(), sys.modules)  # numpy and what this runner itself needs
    for cell in job["cells"]:
        before = set(sys.modules)
        if cell["kind"] != "test":
            _exec_cell(cell["source"], ns)
        elif mode == "record":
            cells[cell["grade_id"]] = _record_cell(cell["source"], ns, names, out_arrays)
        else:
            cells[cell["grade_id"]] = _replay_cell(job["calls"][cell["grade_id"]], arrays, ns, out_arrays)
            write_bundle(box, "out", {"cells": cells}, out_arrays)
        if mode == "record":
            modules += new_roots(before, sys.modules)
    result = {"cells": cells}
    if mode == "record":
        result["modules"] = [m for m in modules if not m.startswith(("__", "conv_course._replay"))]
    write_bundle(box, "out", result, out_arrays)
    os._exit(0)  # skip atexit handlers the student may have registered


def new_roots(before, after):
    """Modules in `after` but not `before` whose parent package is not new too, in import order.

    Importing these again, in order, imports everything new: a package's submodules come with
    it, and a submodule imported lazily later (``torch._dynamo`` on the first optimizer) is a root.
    """
    new = [m for m in after if m not in before]
    fresh = set(new)
    return [m for m in new if m.rpartition(".")[0] not in fresh]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
