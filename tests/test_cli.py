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
