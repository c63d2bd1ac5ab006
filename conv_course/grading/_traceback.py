"""How a failed check looks in Jupyter and IPython: the message first, no checker frames.

IPython skips frames whose locals hold ``__tracebackhide__ = True``, but never the frame that
raised, and it prints "[... skipping hidden N frame]" for the others; so a checker's own frames
(check_array, run_cases, ...) would still show. Instead, the `checker` decorator gives a failed
check's `AssertionError` IPython's ``_render_traceback_`` hook, which decides the whole display.
Plain Python and pytest still see the ordinary exception and traceback.
"""

import functools
import os

from ._i18n import _

__all__ = ["checker"]

_GRADING_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _outside_grading(tb):
    """`tb` without its leading frames in this package (the checker's own), or None."""
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_GRADING_DIR):
        tb = tb.tb_next
    return tb


def _render_failure(err):
    """How IPython shows a failed check: the message first, then, when the student's code raised
    the error behind it, that error with the student's frames only."""
    lines = [f"{type(err).__name__}: {err}"]
    cause = err.__cause__
    tb = _outside_grading(cause.__traceback__) if cause is not None else None
    if tb is not None:
        lines.append("\n" + _("Where your code raised it:"))
        try:
            from IPython import get_ipython

            lines += get_ipython().InteractiveTB.structured_traceback(type(cause), cause, tb)
        except Exception:  # not in IPython after all, or its formatter failed: plain Python's
            import traceback

            lines += [line.rstrip("\n") for line in traceback.format_exception(type(cause), cause, tb)]
    return lines


def checker(check):
    """Decorator of the public checkers: a failed check (`AssertionError`) keeps its traceback
    for plain Python and pytest, but IPython and Jupyter show its message first, without the
    checker's internal frames (IPython's ``__tracebackhide__`` cannot do that: it never hides
    the frame that raised). It uses IPython's hook for that, ``_render_traceback_``."""
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True  # noqa: F841  (pytest and IPython skip this frame)
        try:
            return check(*args, **kwargs)
        except AssertionError as err:
            err._render_traceback_ = functools.partial(_render_failure, err)
            raise
    return wrapper
