"""Every failure of a ``contrasting`` command is one line; ``--debug`` shows the traceback; checked argument types."""

import argparse
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contrasting.encoders.cli import args as cli_args
from contrasting.encoders.cli.errors import INTERRUPTED, describe, run_command, take_debug_flag


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.setenv("CONTRASTING_DEBUG", "0")  # restored after the test, whatever --debug set


def _fail(error):
    def run():
        raise error

    return run


@pytest.mark.parametrize(("error", "status", "text"), [
    (ValueError("--epochs: expected an integer >= 1, got 0"), 2, "--epochs: expected an integer >= 1, got 0"),
    (FileNotFoundError(2, "No such file or directory", "/no/such.yaml"), 2, "No such file or directory: /no/such.yaml"),
    (IsADirectoryError(21, "Is a directory", "/tmp"), 2, "Is a directory: /tmp"),
    (FileExistsError(17, "File exists", "/tmp/run"), 2, "File exists: /tmp/run"),
    (PermissionError(13, "Permission denied", "/root/x"), 2, "Permission denied: /root/x"),
    (IndexError("list index out of range"), 1, "IndexError: list index out of range (--debug shows the traceback)"),
    (RuntimeError("multi\nline\nmessage"), 1, "RuntimeError: multi line message (--debug shows the traceback)"),
])
def test_a_failure_is_one_line_with_its_status(capsys, error, status, text):
    assert run_command("pretrain", _fail(error)) == status
    err = capsys.readouterr().err
    assert err == f"contrasting pretrain: error: {text}\n"


def test_corrupt_files_are_input_errors(capsys, tmp_path):
    import sqlite3

    import yaml

    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    assert run_command("x", lambda: yaml.safe_load(bad.read_text())) == 2
    assert run_command("x", _fail(sqlite3.DatabaseError("file is not a database"))) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("contrasting x: error: ") for line in lines)


def test_ctrl_c_is_one_line_and_130(capsys):
    assert run_command("grid", _fail(KeyboardInterrupt())) == INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_debug_shows_the_traceback():
    with pytest.raises(IndexError):
        run_command("pretrain", _fail(IndexError("boom")), debug=True)


def test_the_debug_flag_is_taken_anywhere(monkeypatch):
    assert take_debug_flag(["eval"]) == (["eval"], False)
    assert take_debug_flag(["eval", "--debug", "--task", "x"]) == (["eval", "--task", "x"], True)
    monkeypatch.setenv("CONTRASTING_DEBUG", "1")
    assert take_debug_flag(["eval"]) == (["eval"], True)


def test_the_dispatcher_reports_a_plugin_failure_in_one_line(capsys):
    from contrasting.encoders.cli import main

    assert main(["inspect-checkpoint", "/no/such/checkpoint.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("contrasting inspect-checkpoint: error:") and "/no/such" in err[0]


def test_describe_never_spans_lines():
    assert "\n" not in describe(ValueError("a\nb"))


@settings(max_examples=60, deadline=None)
@given(st.integers(-10**6, 10**6))
def test_integers_below_the_bound_are_refused(n):
    for check, least in ((cli_args.positive_int, 1), (cli_args.nonnegative_int, 0)):
        if n >= least:
            assert check(str(n)) == n
        else:
            with pytest.raises(argparse.ArgumentTypeError, match=f">= {least}"):
                check(str(n))


@settings(max_examples=60, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_numbers_must_be_finite_and_in_range(x):
    for check, ok in ((cli_args.positive_float, x > 0), (cli_args.nonnegative_float, x >= 0),
                      (cli_args.unit_interval, 0 <= x <= 1)):
        if math.isfinite(x) and ok:
            assert check(repr(x)) == x
        else:
            with pytest.raises(argparse.ArgumentTypeError):
                check(repr(x))


@pytest.mark.parametrize("text", ["", "one", "1.5", "0x10", "nan"])
def test_non_integers_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="integer"):
        cli_args.positive_int(text)


def test_paths_are_what_they_must_be(tmp_path):
    f = tmp_path / "f.txt"
    f.write_text("x")
    assert cli_args.existing_file(str(f)) == f
    assert cli_args.existing_dir(str(tmp_path)) == tmp_path
    assert cli_args.output_dir(str(tmp_path / "new" / "deeper")) == tmp_path / "new" / "deeper"
    for check, arg in ((cli_args.existing_file, tmp_path), (cli_args.existing_file, tmp_path / "missing"),
                       (cli_args.existing_dir, f), (cli_args.existing_dir, tmp_path / "missing"),
                       (cli_args.output_dir, f), (cli_args.output_dir, f / "below")):
        with pytest.raises(argparse.ArgumentTypeError):
            check(str(arg))
    assert not (tmp_path / "new").exists()  # checked, not made


def test_an_unknown_flag_is_reported_by_its_subcommand(capsys):
    from contrasting.encoders.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["inspect-checkpoint", "x.pt", "--jsn"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: contrasting inspect-checkpoint")
    assert err[-1] == "contrasting inspect-checkpoint: error: unrecognized arguments: --jsn"


def test_debug_reaches_commands_that_report_their_own_errors(monkeypatch, tmp_path):
    from contrasting.encoders.cli import main

    with pytest.raises(Exception, match="no-such-task"):  # the eval command re-raises under --debug
        main(["eval", "--debug", "--task", "no-such-task", "--encoder", "random", "--data-root", str(tmp_path)])
