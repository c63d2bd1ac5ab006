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
             "print(sorted(m for m in ('nbgrader', 'torch', 'dask', 'conv_course.autograde', 'conv_course.sandbox')"
             " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "['conv_course.sandbox']"


def test_each_command_still_gets_its_own_arguments(capsys):
    with pytest.raises(SystemExit):
        cli.main(["autograde", "--help"])
    assert "--jobs" in capsys.readouterr().out
