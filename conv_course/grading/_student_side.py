"""Measurements that run beside the student's code, so that checks on objects can be judged outside it.

Some checks look at objects that are not plain data: a model, an optimizer, a module class. Such a
checker is split in two. A *student-side* function (decorated `student_side`) builds the objects,
runs the student's code on them and returns only plain data (names, numbers, arrays) or raises an
`AssertionError` whose message is the feedback; it knows no expected value. The checker then
judges that data. While grading, the trusted re-check (`conv_course.autograding._replay`) runs the
student-side function in the student's sandbox and the judging part in the instructor's own
process: `HOOK` is how it steps in. In a student's notebook the hook is unset and a checker simply
calls both halves.
"""

import functools

__all__ = ["student_side", "HOOK"]

HOOK = [None]  # hook(name, fn, args, kwargs) -> result, set only by the re-check's processes


def student_side(fn):
    """Decorator: `fn` runs beside the student's code and returns plain data (see the module docstring).

    Its name for the re-check is ``module.function``; it must be a top-level function of a module
    that the grading sandbox can import.
    """
    name = f"{fn.__module__}.{fn.__name__}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        hook = HOOK[0]
        return fn(*args, **kwargs) if hook is None else hook(name, fn, args, kwargs)

    wrapper.student_side = name
    return wrapper
