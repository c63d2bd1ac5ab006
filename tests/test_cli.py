import os
import subprocess
import sys

import pytest

from conv_course import cli


def test_every_command_is_listed_in_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bench_rejects_an_unknown_benchmark(capsys):
    assert cli.main(["bench", "nosuch"]) == 2
    assert "no such benchmark" in capsys.readouterr().err


def test_bad_input_to_a_command_is_a_message_not_a_traceback(capsys):
    assert cli.main(["release", "99-nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conv-course release: ") and "99-nope" in err and "01-corr2d" in err


def test_a_command_imports_only_its_own_module():
    probe = ("import sys\nfrom conv_course import cli\n"
             "for argv in (['--help'], ['sandbox', '--help']):\n"
             "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('nbgrader', 'torch', 'dask', 'conv_course.autograding.autograde', 'conv_course.autograding.sandbox')"
             " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['conv_course.autograding.sandbox']"


def test_each_command_still_gets_its_own_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["autograde", "--help"])
    assert "--jobs" in capsys.readouterr().out


# A command whose run adds a submission to a fresh nbgrader gradebook: nbgrader 0.9 makes SQLAlchemy warn.
NOISY = '''import os, sys, warnings


def add_noisy_arguments(parser):
    parser.add_argument("db")


def run_noisy(args):
    from nbgrader.api import Gradebook

    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # for alembic
    with Gradebook("sqlite:///" + args.db) as gb:
        gb.add_assignment("a")
        gb.add_notebook("nb", "a")
        gb.add_grade_cell("c", "nb", "a", max_score=1, cell_type="code")
        gb.add_student("s")
        gb.add_submission("a", "s")
    warnings.warn("the course's own warning", UserWarning)
'''


@pytest.mark.slow
@pytest.mark.grading
def test_sqlalchemy_warnings_are_hidden_from_every_command(tmp_path):
    (tmp_path / "noisy_command.py").write_text(NOISY)
    probe = ("import argparse, sys\nfrom conv_course import cli\nimport noisy_command\n"
             "cli.COMMANDS['noisy'] = ('noisy_command', 'adds a submission to a gradebook')\n"
             "if sys.argv[1] == 'cli':\n    sys.exit(cli.main(['noisy', sys.argv[2]]))\n"
             "noisy_command.run_noisy(argparse.Namespace(db=sys.argv[2]))\n")

    def run(how):
        return subprocess.run([sys.executable, "-c", probe, how, str(tmp_path / f"{how}.db")], cwd=tmp_path,
                              capture_output=True, text=True)

    direct, via_cli = run("direct"), run("cli")
    assert "SAWarning" in direct.stderr                                      # nbgrader makes SQLAlchemy warn
    assert via_cli.returncode == 0 and "SAWarning" not in via_cli.stderr     # conv-course hides it
    assert "the course's own warning" in via_cli.stderr                      # and nothing else


@pytest.mark.slow
@pytest.mark.grading
def test_the_test_suite_hides_the_same_warnings(tmp_path):
    """The test above shows the warning without a filter; pyproject.toml's filterwarnings hide it."""
    (tmp_path / "noisy_command.py").write_text(NOISY)
    (tmp_path / "test_noisy.py").write_text(
        "import argparse\n\nimport noisy_command\n\n\ndef test_noisy(tmp_path):\n"
        "    noisy_command.run_noisy(argparse.Namespace(db=str(tmp_path / 'g.db')))\n")
    pyproject = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pyproject.toml")
    out = subprocess.run([sys.executable, "-m", "pytest", "-c", pyproject, "--rootdir", str(tmp_path), "-p",
                          "no:cacheprovider", "test_noisy.py"], cwd=tmp_path, capture_output=True, text=True).stdout
    assert "1 passed" in out and "SAWarning" not in out
    assert "the course's own warning" in out
