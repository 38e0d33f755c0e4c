"""The package's import discipline (scalegmn.devtools.imports), checked on the real package and
on small packages built to break it, so the checker itself is tested."""

import subprocess
import sys
import textwrap
from pathlib import Path

from scalegmn.devtools import imports


def test_package_has_no_cycle_no_upward_and_no_hidden_import():
    assert imports.violations() == []


def test_command_line_reports_clean_package():
    run = subprocess.run([sys.executable, "-m", "scalegmn.devtools.imports"], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no cycle" in run.stdout


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "scalegmn"
    for name, body in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
    root = _package(tmp_path, {
        "train/__init__.py": "",
        "train/loop.py": "from scalegmn.train import editing\n",
        "train/editing.py": "def f():\n    from scalegmn.train.loop import g\n",
    })
    found = imports.violations(root)
    assert any("import cycle" in v and "scalegmn.train.editing" in v for v in found), found
    assert any("inside a function" in v for v in found), found


def test_checker_finds_an_upward_import(tmp_path):
    root = _package(tmp_path, {
        "data/__init__.py": "",
        "data/cache.py": "from scalegmn.models.presets import X\n",
        "models/__init__.py": "",
        "models/presets.py": "X = 1\n",
    })
    found = imports.violations(root)
    assert any("upward import of scalegmn.models.presets" in v for v in found), found


def test_checker_accepts_downward_imports_and_lazy_plotting(tmp_path):
    # control: the same shape, imports pointing downwards, plotting imported lazily
    root = _package(tmp_path, {
        "data/__init__.py": "",
        "data/cache.py": "X = 1\n",
        "models/__init__.py": "",
        "models/presets.py": "from scalegmn.data.cache import X\n"
                             "def plot():\n    import matplotlib\n",
    })
    assert imports.violations(root) == []


def test_parse_time_modules_do_not_import_torch():
    # The Snakefile imports these when it is parsed, once per job: torch would add seconds.
    code = ("import sys; import scalegmn.data.config, scalegmn.data.acquire, scalegmn.train.experiments, "
            "scalegmn.models.presets, scalegmn.execution, scalegmn.schema, scalegmn.vocabulary; "
            "print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"
