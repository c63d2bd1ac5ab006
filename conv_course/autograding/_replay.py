"""The three processes of the trusted re-check (`conv_course.autograding.recheck`), one mode each.

``python -m conv_course.autograding._replay MODE BOX``:

- ``record`` (instructor side): run the instructor's notebook and record, for every test cell, the
  calls it makes to names that solution cells define (the arguments and the instructor's result).
- ``replay`` (sandbox, student code): run the student's own cells, then make each recorded call with
  the recorded ARGUMENTS only and write back what came out, as plain data. This process never
  sees an expected value: there is nothing in it to copy.
- ``judge`` (instructor side, no student code): run the instructor's test cell itself, its checker
  and its hidden part included, with each student function replaced by a stand-in that answers
  each call with what the student's function returned in ``replay``. The cell passes or fails
  exactly as the checker decides, with the checker's own message.

Data crosses processes as `conv_course.autograding.plaindata` bundles (JSON + uncompressed .npz, never pickle).
"""

import ast
import builtins
import contextlib
import functools
import io
import json
import os
import sys

from . import plaindata
from .plaindata import Unencodable, decode, encode, write_bundle

__all__ = ["new_roots", "student_names", "reads"]

_MAX_MESSAGE = 2000


class _Shell:
    """Stands in for get_ipython() so that cells with magics still define their functions."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _compile(source, name):
    if any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    return compile(source, name, "exec")


_MAIN = os.getpid()


def _exec_cell(source, ns):
    """Run a cell; returns "Type: message" of the error that stopped it, or None."""
    error = None
    try:
        exec(_compile(source, "<cell>"), ns)
    except BaseException as err:  # noqa: B036  a failing cell must not stop the others
        try:
            error = f"{type(err).__name__}: {err}"[:300]
        except BaseException:  # noqa: B036  a hostile __str__
            error = type(err).__name__
    if os.getpid() != _MAIN:  # a process the cell forked ends with it: only the runner goes on
        os._exit(0)
    return error


def student_names(cells):
    """Top-level names bound by solution cells (functions, classes, variables)."""
    names = set()
    for cell in cells:
        if cell["kind"] != "solution":
            continue
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def reads(source):
    """Names a cell's source reads (empty if it does not parse)."""
    try:
        return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    except SyntaxError:
        return set()


def _binds(source):
    try:
        return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    except SyntaxError:
        return set()


# ---------------------------------------------------------------- record (the instructor's run)

def _student_side_hook():
    """The hook list of `conv_course.grading._student_side`: measurements made beside the student's code."""
    from ..grading._student_side import HOOK

    return HOOK


def _student_side_function(name):
    """The student-side function called `name` ("module.function"), or None."""
    import importlib

    module, _, attr = name.rpartition(".")
    if not module.startswith("conv_course.grading."):
        return None
    try:
        fn = getattr(importlib.import_module(module), attr, None)
    except ImportError:
        return None
    return fn if getattr(fn, "student_side", None) == name else None


def _recorder(name, fn, log, depth, arrays, refs, probe=False):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if depth[0]:
            return fn(*args, **kwargs)
        entry = {"name": name, "probe": probe}
        try:
            entry["args"] = encode(list(args), arrays, refs=refs)
            entry["kwargs"] = encode(dict(kwargs), arrays, refs=refs)
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


def _record_cell(source, ns, names, tainted, arrays):
    log, depth, originals, refs = [], [0], {}, {}
    loaded = reads(source)
    if loaded & tainted:
        return {"status": "unverifiable", "reason": f"the test reads `{sorted(loaded & tainted)[0]}`, computed "
                "from the student's functions outside the test"}
    for name in names:
        if callable(ns.get(name)) and not isinstance(ns[name], type):
            originals[name] = ns[name]
            ns[name] = _recorder(name, ns[name], log, depth, arrays, refs)
    refs.update({id(ns[n]): n for n in names if callable(ns.get(n))})  # they cross by name
    hook = _student_side_hook()
    recorders = {}

    def record_student_side(name, fn, args, kwargs):
        if name not in recorders:
            recorders[name] = _recorder(name, fn, log, depth, arrays, refs, probe=True)
        return recorders[name](*args, **kwargs)

    hook[0] = record_student_side
    watched = []  # a test that traces how the code runs judges more than what it returns
    hooks = {"settrace": sys.settrace, "setprofile": sys.setprofile}
    for name, real in hooks.items():
        setattr(sys, name, lambda fn, _real=real, _name=name: (watched.append(_name), _real(fn))[1])
    try:
        exec(_compile(source, "<test cell>"), ns)
    except BaseException as err:  # noqa: B036
        return {"status": "unverifiable", "reason": f"reference run failed: {type(err).__name__}: {err}"[:300]}
    finally:
        ns.update(originals)
        hook[0] = None
        for name, real in hooks.items():
            setattr(sys, name, real)
    if watched:
        return {"status": "unverifiable", "reason": f"the test watches the code run (sys.{watched[0]}), "
                "not only what it returns: the kernel scores it"}
    bad = [e["unencodable"] for e in log if "unencodable" in e]
    values = {}
    for name in sorted((loaded & names) - set(originals) - {n for n in names if isinstance(ns.get(n), type)}):
        try:
            values[name] = encode(ns[name], arrays)
        except (Unencodable, KeyError):
            bad.append(f"value `{name}`")
    if bad:
        return {"status": "unverifiable", "reason": "not plain data: " + bad[0]}
    classes = sorted(n for n in loaded & names if isinstance(ns.get(n), type))
    if classes and not any(e.get("probe") for e in log):
        return {"status": "unverifiable", "reason": f"the test uses the class `{classes[0]}` the student defines "
                "outside a student-side report"}
    if not log and not values:
        return {"status": "unverifiable", "reason": "the test calls nothing the student defines"}
    return {"status": "ok", "reason": "", "values": values,
            "calls": [{k: e[k] for k in ("name", "probe", "args", "kwargs", "outcome")} for e in log]}


def _record(job, ns):
    names, tainted, cells, arrays, modules, setup_modules = set(job["names"]), set(), {}, [], [], []
    modules += new_roots(set(), sys.modules)  # numpy and what this runner itself needs
    for cell in job["cells"]:
        before = set(sys.modules)
        if cell["kind"] == "test":
            cells[cell["grade_id"]] = _record_cell(cell["source"], ns, names, tainted, arrays)
        else:
            _exec_cell(cell["source"], ns)
            if cell["kind"] == "code" and reads(cell["source"]) & names:
                tainted |= _binds(cell["source"]) - names
        new = new_roots(before, sys.modules)
        modules += new
        if cell["kind"] == "code":
            setup_modules += new
    return {"cells": cells, "modules": [m for m in modules if not m.startswith(("__", "conv_course.autograding._replay"))],
            "setup_modules": setup_modules, "kinds": _kinds(ns, names)}, arrays


def _kinds(ns, names):
    """{name: "class", "callable", "value" or "missing"} of the student's names in `ns`."""
    return {n: ("class" if isinstance(ns[n], type) else "callable" if callable(ns[n]) else "value")
            if n in ns else "missing" for n in sorted(names)}


def new_roots(before, after):
    """Modules in `after` but not `before` whose parent package is not new too, in import order.

    Importing these again, in order, imports everything new: a package's submodules come with
    it, and a submodule imported lazily later (``torch._dynamo`` on the first optimizer) is a root.
    """
    new = [m for m in after if m not in before]
    fresh = set(new)
    return [m for m in new if m.rpartition(".")[0] not in fresh]


# ---------------------------------------------------------------- replay (student code, sandboxed)

def _progress(box, cell):
    with open(os.path.join(box, "progress"), "w") as f:  # pre-created: the box takes no new files
        f.write(str(cell))


def _mutations(args, kwargs, before, arrays):
    """Arguments the call changed in place (top-level arrays only): {"a0": tree, "k:name": tree}."""
    import numpy as np

    changed = {}
    for key, value in [(f"a{i}", a) for i, a in enumerate(args)] + [(f"k:{k}", v) for k, v in kwargs.items()]:
        old = before.get(key)
        if isinstance(value, np.ndarray) and old is not None and not (
                old.shape == value.shape and np.array_equal(old, value, equal_nan=True)):
            changed[key] = encode(value, arrays)
    return changed


def _replay_call(fn, call, arrays, out_arrays, tensors, resolve):
    import numpy as np

    args = decode(call["args"], arrays, tensors=tensors, resolve=resolve)
    kwargs = decode(call["kwargs"], arrays, tensors=tensors, resolve=resolve)
    before = {k: np.array(v, copy=True) for k, v in
              [(f"a{i}", a) for i, a in enumerate(args)] + [(f"k:{k}", v) for k, v in kwargs.items()]
              if isinstance(v, np.ndarray)}
    try:
        value = fn(*args, **kwargs)
    except BaseException as err:  # noqa: B036
        try:
            message = str(err)[:_MAX_MESSAGE]
        except BaseException:  # noqa: B036  a hostile __str__
            message = ""
        return {"kind": "raise", "types": [c.__name__ for c in type(err).__mro__][:20], "message": message}
    try:
        out = {"kind": "return", "value": encode(value, out_arrays)}
    except Unencodable:
        out = {"kind": "unencodable", "type": type(value).__name__[:100]}
    out["after"] = _mutations(args, kwargs, before, out_arrays)
    return out


def _replay(job, ns, box):
    tensors = "tensor" in json.dumps(job["calls"])
    names = set(job["names"])
    errors = []  # why answer cells failed here, for the feedback of a test that misses a name
    for i, cell in enumerate(job["cells"]):
        if i in job["skip"]:
            continue
        _progress(box, i)
        if cell["kind"] != "test":
            error = _exec_cell(cell["source"], ns)
            if error and cell["kind"] == "solution":
                errors.append(error)
            continue
        gid = cell["grade_id"]
        if gid not in job["calls"]:
            continue
        out_arrays = []
        calls = []
        for call in job["calls"][gid]:
            fn = _student_side_function(call["name"]) if call.get("probe") else ns.get(call["name"])
            missing = [n for n in _ref_names(call) if not callable(ns.get(n))]
            if not callable(fn) or missing:
                calls.append({"kind": "missing", "names": missing or [call["name"]]})
                continue
            calls.append(_replay_call(fn, call, job["arrays"], out_arrays, tensors, ns.get))
            if os.getpid() != _MAIN:
                os._exit(0)
        values = {}
        for name in job["values"].get(gid, []):
            if name in ns:
                try:
                    values[name] = encode(ns[name], out_arrays)
                except Unencodable:
                    values[name] = {"t": "opaque", "type": type(ns[name]).__name__[:100]}
        status = _kinds(ns, names)
        write_bundle(box, f"cell-{i}", {"calls": calls, "values": values, "names": status, "errors": errors[:3]},
                     out_arrays, in_place=True)
    _progress(box, "done")


def _ref_names(call):
    """Names of the student objects a recorded call passes by reference (to a probe)."""
    found, stack = [], [call.get("args"), call.get("kwargs")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("t") == "ref":
                found.append(str(node.get("n")))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


# ---------------------------------------------------------------- judge (the checker, trusted side)

class _Unjudgeable(BaseException):
    """The checker asked the student's function something the replay did not answer."""


def _exception(types, message):
    """An exception like the one the student's function raised (same name, nearest builtin base)."""
    bases = [getattr(builtins, t) for t in types if isinstance(getattr(builtins, t, None), type)
             and issubclass(getattr(builtins, t), BaseException)]
    base = bases[0] if bases else Exception
    if base is BaseException or not issubclass(base, Exception):
        base = Exception  # a SystemExit or KeyboardInterrupt must not stop the judge
    name = types[0] if types and isinstance(types[0], str) else "Exception"
    cls = base if base.__name__ == name else type(name[:100], (base,), {})
    return cls(message)


def _opaque(type_name):
    name = str(type_name)[:100] or "object"
    return type(name, (), {"__repr__": lambda self: f"<{name} object>"})()


def _missing(name, errors):
    """Stands in for a name the student's cells did not define because one of them failed."""

    def missing(*args, **kwargs):
        raise NameError(f"name '{name}' is not defined: a cell of yours failed when it ran for grading "
                        f"({'; '.join(errors)})")

    missing.__name__ = missing.__qualname__ = name
    return missing


def _by_name(name):
    return f"\0ref:{name}"  # a student object passed by reference compares by its name


def _stand_in(name, queue, ref_arrays, got_arrays, tensors, refs):
    """A function that answers the checker's calls to `name` (a student function, or a probe) from the
    student's replayed results."""

    def stand_in(*args, **kwargs):
        if not queue:
            raise _Unjudgeable(f"`{name}` was called more often than in the replay")
        call, outcome = queue.pop(0)
        want_args = decode(call["args"], ref_arrays, tensors=tensors, resolve=_by_name)
        want_kwargs = decode(call["kwargs"], ref_arrays, tensors=tensors, resolve=_by_name)
        scratch = []
        try:
            got = decode(encode([list(args), dict(kwargs)], scratch, refs=refs), scratch, resolve=_by_name)
        except Unencodable:
            raise _Unjudgeable(f"`{name}` was called with other arguments than in the replay") from None
        if call["name"] != name or not plaindata.same([want_args, want_kwargs], got, rtol=1e-12, atol=0):
            raise _Unjudgeable(f"`{name}` was called with other arguments than in the replay")
        kind = outcome.get("kind") if isinstance(outcome, dict) else None
        if kind == "missing":
            raise NameError(f"name {(outcome.get('names') or [name])[0]!r} is not defined")
        if kind == "raise":
            types = outcome.get("types") if isinstance(outcome.get("types"), list) else []
            message = outcome.get("message") if isinstance(outcome.get("message"), str) else ""
            raise _exception([str(t) for t in types], message[:_MAX_MESSAGE])
        if kind == "unencodable":
            result = _opaque(outcome.get("type", "object"))
        elif kind == "return":
            result = decode(outcome["value"], got_arrays, tensors=tensors)
        else:
            raise ValueError("malformed replay result")
        import numpy as np

        after = outcome.get("after") or {}
        for key, tree in after.items():
            target = args[int(key[1:])] if key.startswith("a") else kwargs.get(key[2:])
            new = decode(tree, got_arrays)
            if isinstance(target, np.ndarray) and isinstance(new, np.ndarray) and new.shape == target.shape:
                np.copyto(target, new, casting="unsafe")
        return result

    stand_in.__name__ = stand_in.__qualname__ = name
    return stand_in


class _StudentClass:
    """Stands in for a class the student defines: it crosses to probes by name, and cannot be used here."""

    def __init__(self, name):
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        raise _Unjudgeable(f"the test uses the class `{self.__name__}` outside a probe")


def _judge_cell(cell, test, answer, ns, names, ref_arrays, got_arrays):
    tensors = "tensor" in json.dumps(test["calls"])
    if not isinstance(answer.get("calls"), list) or len(answer["calls"]) != len(test["calls"]):
        raise ValueError("malformed replay result")
    queue = list(zip(test["calls"], answer["calls"]))  # one queue for all names, in the recorded order
    saved = {n: ns[n] for n in names if n in ns}
    status = answer.get("names") if isinstance(answer.get("names"), dict) else {}
    values = answer.get("values") if isinstance(answer.get("values"), dict) else {}
    errors = [str(e)[:300] for e in answer.get("errors", []) if isinstance(e, str)][:3]
    refs = {}
    for name in names & reads(cell["source"]):
        state = status.get(name, "missing")
        ns.pop(name, None)
        if state == "missing" and errors:
            ns[name] = _missing(name, errors)
        elif state == "callable":
            ns[name] = _stand_in(name, queue, ref_arrays, got_arrays, tensors, refs)
        elif state == "class":
            ns[name] = _StudentClass(name)
        elif state == "value" and isinstance(values.get(name), dict):
            node = values[name]
            ns[name] = _opaque(node.get("type")) if node.get("t") == "opaque" else decode(node, got_arrays,
                                                                                          tensors=tensors)
        if name in ns and state in ("callable", "class"):
            refs[id(ns[name])] = name
    hook = _student_side_hook()
    stand_ins = {}

    def replayed(name, fn, args, kwargs):
        if name not in stand_ins:
            stand_ins[name] = _stand_in(name, queue, ref_arrays, got_arrays, tensors, refs)
        return stand_ins[name](*args, **kwargs)

    hook[0] = replayed
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(_compile(cell["source"], "<test cell>"), ns)
        verdict = {"status": "pass"}
    except _Unjudgeable as err:
        verdict = {"status": "unjudgeable", "evalue": str(err)}
    except BaseException as err:  # noqa: B036  the checker's verdict, with its message
        verdict = {"status": "fail", "ename": type(err).__name__, "evalue": str(err)[:4 * _MAX_MESSAGE]}
    finally:
        for name in names:
            ns.pop(name, None)
        ns.update(saved)
        hook[0] = None
    verdict["stdout"] = out.getvalue()[-_MAX_MESSAGE:]
    return verdict


def _judge(job, ns, box):
    ref_arrays = job["arrays"]
    names = set(job["names"])
    verdicts = {}
    for cell in job["cells"]:
        gid = cell.get("grade_id")
        if cell["kind"] != "test":
            _exec_cell(cell["source"], ns)
        elif gid in job["tests"]:
            try:
                answer, got_arrays = plaindata.read_bundle(box, f"answer-{gid}")
                verdicts[gid] = _judge_cell(cell, job["tests"][gid], answer, ns, names, ref_arrays, got_arrays)
            except (ValueError, TypeError, KeyError, IndexError, AttributeError, OSError) as err:
                verdicts[gid] = {"status": "fail", "ename": "ReplayError",
                                 "evalue": f"your code's results could not be read back: {str(err)[:200]}"}
    return {"cells": verdicts}, []


def main(mode, box):
    job, arrays = plaindata.read_bundle(box, "job")
    job["arrays"] = arrays
    sys.path.insert(0, os.getcwd())  # like a kernel: modules beside the notebook import
    ns = {"__name__": "__main__", "__builtins__": builtins, "get_ipython": _Shell}
    if mode == "replay":
        from .sandbox import seed_workdir

        seed_workdir()  # in the sandbox: work on a private copy of the submission
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # student prints go nowhere; only the bundles count
        _replay(job, ns, box)
    else:
        result, out_arrays = (_record if mode == "record" else _judge)(*(
            (job, ns) if mode == "record" else (job, ns, box)))
        write_bundle(box, "out", result, out_arrays)
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers the notebook may have registered


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
