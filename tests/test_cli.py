"""The `scalegmn` command: help lists every subcommand; errors are one line."""

import subprocess
import sys
from pathlib import Path

from scalegmn.cli import SUBCOMMANDS, main


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out


def test_subcommand_help_shows_its_own_options(capsys):
    try:
        main(["read", "--help"])
    except SystemExit as stop:
        assert stop.code == 0
    assert "--json" in capsys.readouterr().out


def test_installed_entry_point_runs():
    exe = Path(sys.executable).with_name("scalegmn")  # the console script pip installed
    assert exe.exists(), f"{exe} missing: install the package with pip install -e ."
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "standins" in result.stdout and "inspect" in result.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    assert main(["read", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(missing) in err and "Traceback" not in err
