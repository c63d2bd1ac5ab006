"""How conv_course runs nbgrader: this interpreter's bin/ on PATH, and nbgrader's noise hidden."""

import os
import sys
import warnings

__all__ = ["SQLAlchemyWarning", "hide_sqlalchemy_warnings", "with_this_python"]


class _DefinedBySQLAlchemy(type):
    """issubclass(C, SQLAlchemyWarning) holds for every class C that SQLAlchemy defines."""

    def __subclasscheck__(cls, sub):
        return isinstance(sub, type) and sub.__module__.split(".")[0] == "sqlalchemy"


class SQLAlchemyWarning(Warning, metaclass=_DefinedBySQLAlchemy):
    """In a warnings filter, stands for every warning class SQLAlchemy defines (SAWarning,
    MovedIn20Warning, ...) without importing SQLAlchemy, which costs a command that never
    uses it 0.2 s."""


def hide_sqlalchemy_warnings():
    """Ignore SQLAlchemy's warnings from here on.

    nbgrader 0.9's gradebook code makes SQLAlchemy 2 warn ("SAWarning: Object of type
    <SubmittedAssignment> not in session, add operation along 'Assignment.submissions' will not
    proceed"): noise about nbgrader's internals that no instructor can act on. conv_course uses
    SQLAlchemy only through that gradebook. `course.nbgrader` applies this in nbgrader's process too.
    """
    warnings.filterwarnings("ignore", category=SQLAlchemyWarning)


def with_this_python(env):
    """`env` (a dict, changed in place and returned) with this interpreter's bin/ first on PATH:
    nbgrader runs `alembic` from PATH to create a gradebook, and its kernels should be this
    interpreter's. A PATH that already starts with it is left as it is."""
    bin_dir = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        env["PATH"] = bin_dir + os.pathsep + path if path else bin_dir
    return env
