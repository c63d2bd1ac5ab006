"""The `conv-course` command: one entry point for readers, students and instructors.

Each subcommand NAME lives in the module that implements it; that module provides
``add_NAME_arguments(parser)`` and ``run_NAME(args) -> int``. This file only wires them up.
"""

import argparse
import importlib
import sys
import warnings

from .autograding.nbgrader_env import hide_sqlalchemy_warnings

__all__ = ["main", "COMMANDS"]

# name -> (module, help)
COMMANDS = {
    "book": ("conv_course.book", "build the HTML book, every edition, into _build/html (offline)"),
    "translations": ("conv_course.book", "update the translation catalogs in locale/ from the English text"),
    "pdf": ("conv_course.pdf", "build an edition of the book as one PDF into _build/pdf/ (offline)"),
    "release": ("conv_course.autograding.course", "regenerate exercises/ from solutions/ (nbgrader generate_assignment)"),
    "autograde": ("conv_course.autograding.autograde", "autograde submissions in parallel, sandboxed, with a trusted re-check"),
    "feedback": ("conv_course.autograding.course", "generate feedback HTML (hidden tests cleared)"),
    "grades": ("conv_course.autograding.course", "export grades as CSV"),
    "sandbox": ("conv_course.autograding.sandbox_kernel", "install or check the bubblewrap-sandboxed grading kernel"),
    "bench": ("conv_course.bench", "run the benchmarks and print their tables"),
}


def _parser(command=None):
    """The argument parser; only `command`'s module is imported to add its arguments, so
    ``conv-course --help`` and each command start without importing the others' dependencies."""
    parser = argparse.ArgumentParser(prog="conv-course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        if name != command:
            continue
        try:
            mod = importlib.import_module(module)
        except ImportError as err:  # a missing optional dependency should not hide other commands
            p.set_defaults(_import_error=err)
            continue
        getattr(mod, f"add_{name}_arguments")(p)
    return parser


def main(argv=None):
    with warnings.catch_warnings():  # the caller's filters come back afterwards
        hide_sqlalchemy_warnings()
        return _main(argv)


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = _parser(command).parse_args(argv)
    if getattr(args, "_import_error", None) is not None:
        print(f"conv-course {args.command}: cannot import {args._module}: {args._import_error}", file=sys.stderr)
        return 2
    mod = importlib.import_module(args._module)
    try:
        return int(getattr(mod, f"run_{args.command}")(args) or 0)
    except ValueError as err:  # bad user input: the message says what and why, no traceback
        print(f"conv-course {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
