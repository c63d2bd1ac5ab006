"""The sandboxed kernel's entry point: ``python -m ipykernel_launcher`` after a preload.

``python -m conv_course.autograding._preload_kernel -f CONNECTION_FILE ...`` imports the modules named in the
environment variable ``CONV_COURSE_PRELOAD`` (comma-separated, in order), then starts ipykernel
exactly as ``ipykernel_launcher`` does, in a private copy of the notebook's folder (`seed_workdir`).
A warm grading kernel (`conv_course.autograding.execution`) so pays
for the assignment's imports before the student's first cell. The imports bind no name in the
user's namespace: a student who forgets ``import torch`` still gets a NameError. A module that
fails to import is skipped; the student's own import of it raises the error in their cell.
"""

import importlib
import os
import sys

__all__ = ["preload"]


def preload(names):
    """Import each module in `names` (in order); return the names that failed to import."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  any failure is the student's to see, in their own cell
            failed.append(name)
    return failed


def main():
    if sys.path and sys.path[0] in ("", os.getcwd()):  # as ipykernel_launcher: IPython adds it back later
        del sys.path[0]
    from conv_course.autograding.sandbox import seed_workdir

    seed_workdir()  # the notebook's files, into the kernel's private folder (again by the first cell)
    preload([n for n in os.environ.pop("CONV_COURSE_PRELOAD", "").split(",") if n])
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
