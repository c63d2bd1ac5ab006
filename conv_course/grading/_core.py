"""The grading core: seeded case groups, array comparison with a diagnosis, no reference calls.

Every checker in `conv_course.grading` follows the same recipe:

1. build the cases of one group from a seeded ``np.random.default_rng`` (`case_rng`), a
   different seed set when ``hidden=True``;
2. compute the expected output with `conv_course.ops` and a few deliberately WRONG variants
   of it (kernel flipped, stride ignored, ...), each paired with the bug it reveals;
3. call the student's function inside `forbid_references`, so it cannot pass by calling a
   reference implementation;
4. compare with `check_array`, whose `AssertionError` names the case, the expected and
   received shapes, the first differing values and, when the received array equals one of
   the wrong variants, the likely bug.

Messages never print whole arrays and never print test source. Public checkers carry the
`checker` decorator, so that in Jupyter/IPython a failed check shows its message first, not the
checker's own frames.
"""

import contextlib
import functools
import hashlib
import importlib.abc
import os
import re
import sys
import zlib

import numpy as np

from ._i18n import N_, _
from ._traceback import checker

__all__ = ["forbid_references", "check_array", "select_variants", "call_student", "not_implemented", "run_cases",
           "case_rng", "hidden_seed", "checker", "format_case", "shape_diagnoses", "likely_bug", "output_of",
           "join_clauses", "REFERENCE_MODULES", "SECRET_ENV"]

SECRET_ENV = "CONV_COURSE_HIDDEN_SEED"  # the course secret that seeds hidden cases, when set

# module -> regular expression selecting the public callables a student must not call.
REFERENCE_MODULES = {
    "conv_course.ops": r".*",
    "numpy": r"^(convolve|correlate)$",
    "scipy.signal": r"(convolve|correlate)",
    "scipy.ndimage": r"^(convolve|correlate|convolve1d|correlate1d|maximum_filter|uniform_filter|minimum_filter)$",
    "skimage.measure": r"^block_reduce$",
    "torch": r"^(conv\w*|\w*pool\w*|convolution)$",
    "torch.nn.functional": r"^(conv\w*|\w*pool\w*|unfold|fold)$",
}

_state = {"depth": 0, "saved": [], "violations": [], "hook": None}
_NAMES = {}  # (module name, id) -> names of its blocked callables


class _ReferenceCall(AssertionError):
    """A call to a reference implementation while a student's function was being checked."""


def _blocked(func_name, ref_name, orig):
    @functools.wraps(orig)
    def blocked(*args, **kwargs):
        msg = _("`{func_name}` called {reference} while being checked: write the computation "
                "yourself (reference implementations are not allowed here)").format(func_name=func_name,
                                                                                     reference=ref_name)
        _state["violations"].append(msg)
        raise _ReferenceCall(msg)

    blocked.__wrapped_reference__ = orig
    return blocked


def _patch_module(module, func_name, blocked_by_id):
    pattern = REFERENCE_MODULES.get(module.__name__)
    if pattern is None:
        return
    key = (module.__name__, id(module))
    if key not in _NAMES:  # scanning dir(torch) costs milliseconds: once per module
        names = getattr(module, "__all__", None) if module.__name__ == "conv_course.ops" else None
        _NAMES[key] = [n for n in (names if names is not None else dir(module))
                       if not n.startswith("_") and re.search(pattern, n)]
    for name in _NAMES[key]:
        orig = getattr(module, name, None)
        if not callable(orig) or isinstance(orig, type) or hasattr(orig, "__wrapped_reference__"):
            continue
        wrapper = _blocked(func_name, f"{module.__name__}.{name}", orig)
        blocked_by_id.setdefault(id(orig), wrapper)  # for names the student imported directly
        _state["saved"].append((module.__dict__, name, orig))
        module.__dict__[name] = wrapper


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Blocks references in modules the student's code imports while it is being checked."""

    def __init__(self, func_name, blocked_by_id):
        self.func_name, self.blocked_by_id = func_name, blocked_by_id

    def find_spec(self, fullname, path, target=None):
        if fullname not in REFERENCE_MODULES:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            if _state["depth"]:
                _patch_module(module, self.func_name, self.blocked_by_id)

        loader.exec_module = exec_module
        return spec


@contextlib.contextmanager
def forbid_references(func):
    """While active, any call to a reference convolution/pooling implementation fails.

    Blocked: `conv_course.ops.*`, ``numpy.convolve/correlate``, ``scipy.signal``'s and
    ``scipy.ndimage``'s convolve/correlate (and the ndimage max/uniform filters),
    ``torch.conv*``/``torch.*pool*`` and ``torch.nn.functional.conv*/*pool*/unfold/fold``.
    Names the student imported into the notebook (``from scipy.signal import convolve2d``)
    are blocked too, and so are modules first imported while the context is active.

    Args:
        func: the student's function (its globals are scrubbed as well) or just its name.
    Raises:
        AssertionError: inside the context, when a reference is called, with the message
            "`<name>` called <reference> while being checked: write the computation yourself";
            on exit, if such a call happened and its error was swallowed by the student's code.
    """
    func_name = func if isinstance(func, str) else getattr(func, "__name__", None) or _("your function")
    if _state["depth"]:
        _state["depth"] += 1
        try:
            yield
        finally:
            _state["depth"] -= 1
        return
    try:
        import conv_course.ops  # noqa: F401  (always blocked, even if the student never imported it)
    except ImportError:  # pragma: no cover - only while the package is incomplete
        pass

    blocked_by_id = {}
    _state.update(depth=1, saved=[], violations=[])
    try:
        for mod_name in REFERENCE_MODULES:
            if mod_name in sys.modules:
                _patch_module(sys.modules[mod_name], func_name, blocked_by_id)
        namespace = getattr(func, "__globals__", None)
        if isinstance(namespace, dict):
            for name, value in list(namespace.items()):
                if id(value) in blocked_by_id and blocked_by_id[id(value)].__wrapped_reference__ is value:
                    _state["saved"].append((namespace, name, value))
                    namespace[name] = blocked_by_id[id(value)]
        hook = _PatchOnImport(func_name, blocked_by_id)
        sys.meta_path.insert(0, hook)
        _state["hook"] = hook
        yield
    finally:
        if _state["hook"] in sys.meta_path:
            sys.meta_path.remove(_state["hook"])
        for namespace, name, value in reversed(_state["saved"]):
            namespace[name] = value
        violations = list(_state["violations"])
        _state.update(depth=0, saved=[], violations=[], hook=None)
    if violations:
        raise _ReferenceCall(violations[0])


def hidden_seed(name, default):
    """The seed of the hidden cases called `name`: `default` (a seed anyone can read in this
    package) unless the course secret is set in the environment variable ``SECRET_ENV``
    (CONV_COURSE_HIDDEN_SEED), in which case sha256(name, secret) picks it, so only a
    process holding the secret can generate the hidden cases."""
    secret = os.environ.get(SECRET_ENV)
    if not secret:
        return default
    digest = hashlib.sha256(f"{name}\0{secret}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def case_rng(group, hidden=False, index=0):
    """A seeded generator for case `index` of `group`; hidden cases draw from another seed set,
    derived from the course secret when one is set (see `hidden_seed`)."""
    base = zlib.crc32(group.encode()) % (2**31)
    if hidden:
        return np.random.default_rng(hidden_seed(f"{group}\0{index}", base + 100_003 * (index + 1)))
    return np.random.default_rng(base + index)


def run_cases(cases, check_one):
    """Check every case of a group in order; the first failure raises its `AssertionError`.

    Args:
        cases: an iterable of case dicts.
        check_one: callable(case) that raises AssertionError on a wrong answer.
    Returns:
        the number of cases checked (at least one, or ValueError: a group must test something).
    """
    n = 0
    for case in cases:
        check_one(case)
        n += 1
    if n == 0:
        raise ValueError("run_cases: `cases` is empty; a case group must contain at least one case")
    return n


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array{tuple(value.shape)} {value.dtype}"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def format_case(case):
    """Render a case dict as ``key=value, ...``; arrays appear as their shape and dtype only."""
    return ", ".join(f"{key}={_describe(value)}" for key, value in case.items())


def _fmt(x):
    x = x.item() if hasattr(x, "item") else x
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _first_differences(received, expected, atol, rtol, limit=3):
    bad = ~np.isclose(received, expected, atol=atol, rtol=rtol, equal_nan=False)
    where = np.argwhere(bad)[:limit]
    parts = []
    for idx in where:
        idx = tuple(int(i) for i in idx)
        parts.append(_("at {index} expected {expected}, received {received}").format(
            index=list(idx), expected=_fmt(expected[idx]), received=_fmt(received[idx])))
    return int(bad.sum()), parts


def shape_diagnoses(expected_shape, size_formula="H_out = (H + 2*P - K) // S + 1"):
    """Shape-only wrong variants for the last two (spatial) axes of `expected_shape`.

    Returns name -> (shape, diagnosis): one row/column short or long, height and width swapped.
    """
    shape = tuple(expected_shape)
    lead, (h, w) = shape[:-2], shape[-2:]
    out = {}
    for dh, dw, what in _OFF_BY_ONE:
        out[what] = (lead + (h + dh, w + dw), _("output is {what}: check {size_formula} (and that your loop "
                                                "visits every output position exactly once)").format(
                                                    what=_(what), size_formula=size_formula))
    if h != w:
        out["swapped"] = (lead + (w, h), _("height and width are swapped: the output has shape (..., W_out, H_out) "
                                           "= {swapped} instead of (..., H_out, W_out) = {shape}").format(
                                               swapped=lead + (w, h), shape=shape))
    return out


_OFF_BY_ONE = [(-1, 0, N_("one row short")), (1, 0, N_("one row long")), (0, -1, N_("one column short")),
               (0, 1, N_("one column long")), (-1, -1, N_("one row and one column short")),
               (1, 1, N_("one row and one column long"))]


def _crop_of(expected, shape):
    """The top-left `shape` corner of `expected` (what an output one row or column short still
    computes correctly), or None when `shape` is not smaller than `expected` on every axis."""
    if len(shape) != expected.ndim or shape == expected.shape or any(
            s > e for s, e in zip(shape, expected.shape)):
        return None
    return expected[tuple(slice(0, s) for s in shape)]


def _explains(wrong, received, expected, atol, rtol):
    """True when the wrong variant `wrong` (an array, a shape tuple or a predicate) gives `received`."""
    if callable(wrong):
        return bool(wrong(received))
    if isinstance(wrong, tuple):
        wrong = _crop_of(expected, wrong)
        if wrong is None:
            return False
    wrong = np.asarray(wrong)
    if wrong.shape != received.shape:
        return False
    same_as_expected = wrong.shape == expected.shape and np.allclose(wrong, expected, atol=atol, rtol=rtol)
    return not same_as_expected and np.allclose(received, wrong, atol=atol, rtol=rtol)


def select_variants(received, expected, variants, atol=1e-6, rtol=1e-6):
    """The wrong variants that explain `received`, in their order: name -> (wrong, diagnosis).

    Those whose wrong value gives `received` win, all of them (an array equal to it and different
    from `expected`, an accepting predicate, or a smaller shape whose top-left corner of
    `expected` equals it): two bugs can give the same wrong array (padding on one side only and
    an output one row and one column short), and the message then names both. Otherwise, only
    when the received shape is wrong, the variants of that shape (shape tuples and arrays).
    `variants` is what `check_array` takes.
    """
    received, expected = np.asarray(received), np.asarray(expected)
    variants = variants or {}
    found = {name: (wrong, text) for name, (wrong, text) in variants.items()
             if _explains(wrong, received, expected, atol, rtol)}
    if found or received.shape == expected.shape:
        return found
    return {name: (wrong, text) for name, (wrong, text) in variants.items() if not callable(wrong)
            and tuple(wrong if isinstance(wrong, tuple) else np.shape(wrong)) == received.shape}


def _diagnose(received, expected, variants, atol, rtol, limit=3):
    """The diagnoses of `select_variants`, each once, at most `limit`, joined by "Or:" lines."""
    chosen = select_variants(received, expected, variants, atol, rtol)
    texts = list(dict.fromkeys(text for _, text in chosen.values()))
    if not texts:
        return None
    return texts[0] + "".join("\n  " + _("Or: {diagnosis}").format(diagnosis=text) for text in texts[1:limit])


def check_array(received, expected, *, case, variants=None, atol=1e-6, rtol=1e-6, name=None):
    """Compare a student's array with the expected one; explain a mismatch.

    Args:
        received: what the student's function returned (anything array-like).
        expected: the reference result, shape (...).
        case: dict describing the case (rendered ``key=value``; arrays as shape and dtype).
        variants: name -> (wrong, diagnosis), `wrong` being an array, a shape tuple or a
            predicate ``f(received) -> bool``. Each variant that `select_variants` picks for
            `received` adds "Likely bug: <diagnosis>" (three at most, each further one on its
            own line starting "Or:").
        atol, rtol: tolerances of `np.allclose`.
        name: what is compared, for the message, already translated (default: "output").
    Raises:
        AssertionError: on a shape or value mismatch, with the case, both shapes, the first
            differing values and the likely bug.
    """
    expected = np.asarray(expected)
    name, where = name or _("output"), format_case(case)
    if received is None:
        raise AssertionError(_("case {case}: {name} is None; did you forget `return`?").format(case=where, name=name))
    try:
        received = np.asarray(received)
    except Exception as err:  # e.g. ragged nested lists
        raise AssertionError(_("case {case}: {name} is not an array ({error})").format(
            case=where, name=name, error=err)) from None
    if received.dtype == object or received.dtype.kind not in "biuf":
        raise AssertionError(_("case {case}: {name} has dtype {dtype}; expected a numeric array").format(
            case=where, name=name, dtype=received.dtype))
    if received.shape == expected.shape and np.allclose(received, expected, atol=atol, rtol=rtol):
        return
    lines = [_("wrong {name} for case {case}").format(name=name, case=where)]
    if expected.ndim == 0 and received.ndim == 0:
        lines.append("  " + _("expected {expected}, received {received}").format(
            expected=_fmt(expected), received=_fmt(received)))
    else:
        lines.append("  " + _("expected shape {expected}, received shape {received}").format(
            expected=tuple(expected.shape), received=tuple(received.shape)))
        if received.shape == expected.shape:
            n_bad, parts = _first_differences(received, expected, atol, rtol)
            lines.append("  " + _("{n_bad} of {size} values differ; {first}").format(
                n_bad=n_bad, size=expected.size, first=join_clauses(parts)))
    diagnosis = _diagnose(received, expected, variants, atol, rtol)
    if diagnosis:
        lines.append("  " + likely_bug(diagnosis))
    raise AssertionError("\n".join(lines))


def join_clauses(clauses):
    """Clauses joined into one sentence, "a; b; c" (the separator is translated: "a；b；c")."""
    return functools.reduce(lambda first, second: _("{first}; {second}").format(first=first, second=second), clauses)


def output_of(function):
    """The name of `function`'s result in messages, e.g. "corr2d output" (translated)."""
    return _("{function} output").format(function=function)


def likely_bug(diagnosis):
    """The "Likely bug: <diagnosis>" line of a failed check (`diagnosis` already translated)."""
    return _("Likely bug: {diagnosis}").format(diagnosis=diagnosis)


def not_implemented(name):
    """The `AssertionError` for a student function `name` that still raises NotImplementedError."""
    return AssertionError(_("`{name}` is not implemented yet: replace `raise NotImplementedError()` with your "
                            "code").format(name=name))


def call_student(fn, *args, case, **kwargs):
    """Call the student's `fn(*args, **kwargs)` with references forbidden.

    Errors become `AssertionError`s that name the case (the original error is chained).
    A `NotImplementedError` says the exercise is not done yet.
    """
    name = getattr(fn, "__name__", None) or _("your function")
    if not callable(fn):
        raise AssertionError(_("`{name}` is not a function (got {type})").format(name=name, type=type(fn).__name__))
    try:
        with forbid_references(fn):
            return fn(*args, **kwargs)
    except _ReferenceCall as err:
        raise AssertionError(str(err)) from None
    except NotImplementedError:
        raise not_implemented(name) from None
    except Exception as err:  # AssertionError included
        raise AssertionError(_("case {case}: `{name}` raised {error_type}: {error}").format(
            case=format_case(case), name=name, error_type=type(err).__name__, error=err)) from err
