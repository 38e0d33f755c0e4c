"""The README's architecture picture stays true, and each rule's script bears the rule's name.

Read as text, fast: the rules of the Snakefile and rules/*.smk, the subpackages of scalegmn/ in
the layer order of scalegmn.devtools.imports, and the workflow scripts.
"""

import re
from pathlib import Path

import pytest

from scalegmn.devtools.imports import LAYERS

REPO = Path(__file__).resolve().parents[2]
RULE = re.compile(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", re.MULTILINE)
SCRIPT = re.compile(r"^\s+script:\s*\n\s+\"\.\./workflow_scripts/(\w+)\.py\"", re.MULTILINE)


def _rules() -> dict[str, str]:
    """Every rule of the workflow, name -> body."""
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    return {m[1]: m[2] for f in files for m in RULE.finditer(f.read_text())}


def _picture() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Architecture\n", 1)
    assert len(section) == 2, "README.md: no '## Architecture' section"
    block = re.search(r"\n```\n(.*?)\n```\n", section[1].split("\n## ", 1)[0], re.DOTALL)
    assert block, "README.md: the Architecture section has no picture (a ``` block)"
    return block[1]


def _subpackages() -> list[str]:
    root = REPO / "scalegmn"
    found = [p.parent.name for p in root.glob("*/__init__.py")] + [p.stem for p in root.glob("*.py")]
    return sorted((n for n in found if n in LAYERS and LAYERS[n] > 0), key=lambda n: (LAYERS[n], n))


def test_picture_names_every_rule():
    picture = _picture()
    missing = [r for r in _rules() if not re.search(rf"(?<![\w/]){r}(?!\w)", picture)]
    assert not missing, f"README architecture picture: rules {missing} are not in it"


def test_picture_names_every_subpackage_in_pipeline_order():
    picture = _picture()
    # a package path, not a results path (data/{dataset}, train/{task}: those are files)
    firsts = {}
    for name in _subpackages():
        is_package = (REPO / "scalegmn" / name / "__init__.py").exists()
        after = "/(?!{)" if is_package else "(?![\\w/])"  # subpackage `nn/`, module `cli`
        m = re.search(rf"(?<![\w/{{]){name}{after}", picture)
        assert m, f"README architecture picture: scalegmn/{name} is not in it"
        firsts[name] = m.start()
    in_picture = sorted(firsts, key=firsts.get)
    assert in_picture == _subpackages(), "README architecture picture: the package column is " \
        f"not in the layer order of scalegmn.devtools.imports: {in_picture}"


def test_picture_names_only_modules_that_exist():
    picture = _picture()
    for pkg, module in re.findall(r"(?<![\w/{])(\w+)/(\w+)(?![\w{])", picture):
        if pkg in LAYERS:
            path = REPO / "scalegmn" / pkg / module
            assert path.with_suffix(".py").exists() or (path / "__init__.py").exists(), \
                f"README architecture picture names scalegmn/{pkg}/{module}, which does not exist"


@pytest.mark.parametrize("rule", sorted(r for r, body in _rules().items() if "script:" in body))
def test_rule_runs_the_script_of_its_name_with_log_and_benchmark(rule):
    body = _rules()[rule]
    script = SCRIPT.search(body)
    assert script and script[1] == rule, f"rule {rule} should run workflow_scripts/{rule}.py"
    assert re.search(r"^\s+log:\s*$", body, re.MULTILINE), f"rule {rule}: no log:"
    assert re.search(r"^\s+benchmark:\s*$", body, re.MULTILINE), f"rule {rule}: no benchmark:"


def test_every_workflow_script_belongs_to_a_rule():
    rules = _rules()
    scripts = {p.stem for p in (REPO / "workflow_scripts").glob("*.py")}
    assert scripts == {r for r, body in rules.items() if "script:" in body}
