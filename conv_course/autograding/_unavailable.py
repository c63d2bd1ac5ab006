"""Bound over a reference implementation inside a grading sandbox (`conv_course.autograding.sandbox.reference_free`).

Student code that imports a hidden module gets this error instead: while an assignment is graded,
the process running student code holds no implementation of what the assignment asks for.
"""

raise ImportError(f"{__name__} is not available to student code while it is graded: the grading sandbox "
                  "holds no reference implementation of what the assignment asks you to write")
