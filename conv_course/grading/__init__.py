"""Checkers called by the nbgrader test cells of the course's assignments.

A test cell calls one checker per case group, e.g. ``check_corr2d(corr2d, group="padding")``;
``hidden=True`` runs the hidden variant of the group (other seeds, more cases). A wrong
answer raises `AssertionError` with the case, expected vs received shapes and values, and the
likely bug. The core (`forbid_references`, `check_array`, ...) lives in `._core`. Messages are
in English, or in Simplified Chinese with ``CONV_COURSE_LANG=zh_CN`` (gettext: `._i18n`).

Checkers are loaded on first use from the topic modules listed in `CHECKER_MODULES`, so
``import conv_course.grading`` stays cheap and never imports torch by itself.
"""

import importlib

from ._core import (REFERENCE_MODULES, call_student, case_rng, check_array, checker, forbid_references,
                    format_case, hidden_seed, run_cases, select_variants, shape_diagnoses)

__all__ = ["forbid_references", "check_array", "select_variants", "call_student", "run_cases", "case_rng",
           "hidden_seed", "checker", "format_case", "shape_diagnoses", "REFERENCE_MODULES", "CHECKER_MODULES"]

# Topic modules, one per assignment family; each lists its checkers in `__all__`.
CHECKER_MODULES = ["conv", "channels", "kernel_design", "pooling", "matmul", "backward", "training", "finetuning"]


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    for module_name in CHECKER_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as err:
            if err.name == f"{__name__}.{module_name}":
                continue  # that topic module is not part of this checkout
            raise
        if name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
