"""The docs are self-contained: every reference the code, config, rules or README make points
into ``docs/`` at a section that exists, and docs/results.md prints the paper's numbers that
``scalegmn.report.paper`` holds."""

import re
from pathlib import Path

import pytest

from scalegmn.report import paper

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SOURCES = [
    *sorted((REPO / "scalegmn").rglob("*.py")),
    *sorted((REPO / "rules").glob("*.smk")),
    *sorted((REPO / "workflow_scripts").glob("*.py")),
    REPO / "config.yaml",
    REPO / "Snakefile",
    REPO / "README.md",
]
# A reference to a document that is not in the repository: the names the code used to cite.
OUTSIDE = re.compile(r"(?<![\w/])(scalegmn-spec(\.md)?|spec\.md|datasets\.md|style\.md|ecosystem\.md)|(?<![\w/-])spec §")
DOC_REF = re.compile(r"docs/([\w-]+\.md)((?:[ ,]*(?:-|and)?\s*§\d+(?:\.\d+)?)*)")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)")


def _sections(doc: Path) -> set[str]:
    """Section numbers of ``doc``'s headings (``### 4.1-4.5 Title`` gives 4.1 to 4.5)."""
    found = set()
    for line in doc.read_text().splitlines():
        m = re.match(r"#+ (\d+)(?:\.(\d+))?(?:-\d+\.(\d+))?[ .]", line)
        if m:
            major, minor, last = m.groups()
            found.add(major if minor is None else f"{major}.{minor}")
            if last:
                found.update(f"{major}.{k}" for k in range(int(minor), int(last) + 1))
    return found


def _lines():
    for path in SOURCES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            yield path.relative_to(REPO), number, line


def test_no_reference_points_outside_the_repository():
    bad = [f"{p}:{n}: {line.strip()}" for p, n, line in _lines() if OUTSIDE.search(line)]
    assert not bad, "references to documents outside the repository:\n" + "\n".join(bad)


def test_every_docs_reference_names_an_existing_section():
    bad = []
    for path, number, line in _lines():
        for name, sections in DOC_REF.findall(line):
            doc = DOCS / name
            if not doc.exists():
                bad.append(f"{path}:{number}: docs/{name} does not exist")
                continue
            known = _sections(doc)
            bad += [f"{path}:{number}: docs/{name} has no §{s}" for s in SECTION.findall(sections) if s not in known]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_an_outside_reference():
    # Control: the patterns above do flag the forms the code used to cite.
    assert OUTSIDE.search("see spec §2.7") and OUTSIDE.search("(datasets.md §0, corrected)")
    assert not OUTSIDE.search("see docs/model.md §2.7 and docs/datasets.md §0")
    assert DOC_REF.findall("(docs/model.md §2.7, §2.8)") == [("model.md", " §2.7, §2.8")]


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")) + [REPO / "README.md"], ids=lambda p: p.name)
def test_relative_links_resolve(doc):
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
        assert (doc.parent / target).exists(), f"{doc.name}: link to {target} resolves to nothing"


def test_results_md_prints_the_papers_numbers():
    # Sections "## Table 1/2/3" hold the classification, generalization and editing numbers.
    sections = (DOCS / "results.md").read_text().split("\n## Table ")[1:]
    assert len(sections) == len(paper.PAPER)
    for text, rows in zip(sections, paper.PAPER.values(), strict=True):
        for row, cells in rows.items():
            line = next((ln for ln in text.splitlines() if ln.startswith(f"| {row} |")), None)
            assert line is not None, f"docs/results.md: no row {row}"
            printed = {(float(m), float(sd)) for m, sd in re.findall(r"([\d.]+) ± ([\d.]+)", line)}
            assert printed == set(cells.values()), f"docs/results.md row {row}: {printed} != {cells}"
