"""The Snakefile and rules/ are formatted by snakefmt, as the Snakemake workflow catalog expects."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAKEFMT = shutil.which("snakefmt") or str(Path(sys.executable).with_name("snakefmt"))


@pytest.fixture
def snakefmt():
    if not Path(SNAKEFMT).exists():
        pytest.skip("snakefmt is not installed (pip install -e '.[test]')")
    return SNAKEFMT


def _check(snakefmt, *paths) -> subprocess.CompletedProcess:
    return subprocess.run([snakefmt, "--check", *map(str, paths)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_snakefile_and_rules_are_snakefmt_formatted(snakefmt):
    proc = _check(snakefmt, ROOT / "Snakefile", ROOT / "rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_check_flags_a_misformatted_rule(snakefmt, tmp_path):
    # control: the check is live (it reads pyproject's line length and fails on bad layout)
    bad = tmp_path / "bad.smk"
    bad.write_text('rule x:\n    output: "a"\n    shell: "touch {output}"\n')
    assert _check(snakefmt, bad).returncode != 0
