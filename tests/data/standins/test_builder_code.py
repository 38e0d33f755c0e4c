"""Each stand-in zoo declares exactly the stand-in modules its build imports (sizes.builder_code),
so the build_standin rule reruns a zoo only when its own code changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scalegmn.data.standins.sizes import BUILDER_MODULES, SIZES, STANDINS, builder_code

from ...workflow.test_rerun import copy_workflow, snakemake

PACKAGE = "scalegmn.data.standins"

# What importing a zoo's builder loads of this package, in a fresh interpreter.
_PROBE = """
import json, sys
from scalegmn.data.standins import zoos
before = sorted(m for m in sys.modules if m == "{pkg}" or m.startswith("{pkg}."))
{call}
after = sorted(m for m in sys.modules if m == "{pkg}" or m.startswith("{pkg}."))
print(json.dumps([before, after]))
"""


def _loaded(call: str) -> tuple[list[str], list[str]]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(pkg=PACKAGE, call=call)],
                         capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    files = [sorted("__init__.py" if m == PACKAGE else m.rsplit(".", 1)[1] + ".py" for m in mods)
             for mods in (before, after)]
    return files[0], files[1]


@pytest.mark.parametrize("size", ["tiny", "scale"])
@pytest.mark.parametrize("name", STANDINS)
def test_declared_code_is_what_the_build_imports(name, size):
    if name not in SIZES[size]:
        pytest.skip(f"no {size} {name}")
    _, after = _loaded(f"zoos._builder({name!r}, {size!r})")
    assert after == builder_code(name, size)


def test_the_dispatcher_imports_no_family_module():
    """Control: without the lazy family imports every zoo would depend on all the code."""
    before, after = _loaded("pass")
    assert before == after == ["__init__.py", "sizes.py", "zoos.py"]
    inr, cnn = set(builder_code("mnist_inr", "tiny")), set(builder_code("svhn_gs", "tiny"))
    assert "cnn_train.py" in cnn - inr and "siren_fit.py" in inr - cnn
    # the dispatcher imports the families by name (like the CLI its subcommands), which the
    # import-cycle checks cannot see: no family module may import it back
    folder = Path(__file__).parents[3] / "scalegmn" / "data" / "standins"
    for module in set(BUILDER_MODULES.values()):
        source = (folder / f"{module}.py").read_text()
        assert "standins.zoos" not in source and "import zoos" not in source, module


def test_editing_the_cnn_training_code_rebuilds_only_the_cnn_zoo(tmp_path):
    """Through Snakemake: with every stand-in up to date, an edited cnn_train.py makes the CNN zoo's
    job out of date and leaves the INR zoos alone; an edited siren_fit.py does the opposite."""
    config = yaml.safe_load((Path(__file__).parents[2] / "workflow" / "data_tiny.yaml").read_text())
    (tmp_path / "wf").mkdir()
    work = copy_workflow(tmp_path / "wf", config)
    targets = [f"results/data/{name}/raw" for name in ("mnist_inr", "cifar10_inr", "svhn_gs")]
    for target in targets:
        (work / target).mkdir(parents=True)
    code = work / "scalegmn" / "data" / "standins"
    old = time.time() - 3600
    for path in code.glob("*.py"):
        os.utime(path, (old, old))

    def planned() -> list[str]:
        res = snakemake(work, "-n", *targets)
        assert res.returncode == 0, res.stderr[-3000:]
        out = res.stdout + res.stderr
        return sorted(t for t in targets if f"output: {t}" in out)

    def edit(name: str) -> str:
        text = (code / name).read_text()
        (code / name).write_text(text + "# edited\n")
        return text

    assert planned() == []
    original = edit("cnn_train.py")
    assert planned() == ["results/data/svhn_gs/raw"]
    (code / "cnn_train.py").write_text(original)
    os.utime(code / "cnn_train.py", (old, old))
    edit("siren_fit.py")
    assert planned() == ["results/data/cifar10_inr/raw", "results/data/mnist_inr/raw"]
