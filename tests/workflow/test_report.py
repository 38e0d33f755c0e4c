"""The HTML report (`snakemake --report`): the landing page describes the workflow, each table is
an HTML table with its own caption, each figure its own caption; headless Chromium renders the
report's landing page and, from the table the report embeds (the report app shows it in a frame
on a click, which --dump-dom cannot make), every cell of table1. The Chromium part is skipped
where no chromium is installed (CI installs it: .ci/run)."""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
import subprocess

import pytest
import yaml

from .test_rerun import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow  # builds a tiny table1 (~1 min on 2 shared cores)

TINY = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    config = {**TINY, "tables": {"table1": {**TINY["tables"]["table1"], "optim": {"epochs": 1, "batch_size": 8}}}}
    work = copy_workflow(tmp_path_factory.mktemp("wf"), config)
    for args in (("results/table1",), ("results/table1", "--report", "report.html")):
        res = snakemake(work, *args)
        assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return work


def _entries(page: str) -> dict:
    """The report's embedded results: path -> record (caption, mime type, data URI)."""
    out = {}
    for m in re.finditer(r'"(results/table1/[^"]+)": (\{"name".*?"data_uri": "[^"]*"\})', page):
        out[m.group(1)] = json.loads(m.group(2))
    return out


def test_landing_page_table_and_captions(report):
    page = (report / "report.html").read_text()
    assert "acquires" in page and "stand-in" in page  # report/workflow.rst, the landing page
    entries = _entries(page)
    assert entries["results/table1/table1.html"]["mime_type"] == "text/html"
    captions = {path: e["caption"] for path, e in entries.items()}
    assert len(set(captions.values())) == len(captions)  # one caption per table and figure
    assert "as a bar chart" in captions["results/table1/figures/table1_bars.png"]
    assert "column MNIST" in captions["results/table1/figures/curves_mnist.png"]
    assert "INR editing" not in captions["results/table1/table1.html"]
    # The job's params as readable key=value pairs, not an escaped JSON blob (scalegmn.logs.ReadableJson).
    params = entries["results/table1/table1.html"]["job_properties"]["params"]
    assert "table.columns.mnist.label=MNIST, " in params and "table.optim.epochs=1, " in params, params
    assert "jobs=[[" in params and "mnist, mlp, 0" in params and not {'"', "\\"} & set(params), params


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_renders_the_report_and_table1s_cells(report, tmp_path):
    def dom(url: str) -> str:
        res = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                              "--dump-dom", url], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    shown = dom((report / "report.html").as_uri())
    # What the report's app rendered (scripts and styles removed): the landing page, report/workflow.rst.
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", shown, flags=re.S))
    assert "ScaleGMN pipeline" in text and "assembles each table" in " ".join(text.split())
    # The table as the report embeds it (shown in a frame when clicked), rendered by Chromium.
    data = _entries((report / "report.html").read_text())["results/table1/table1.html"]["data_uri"]
    (tmp_path / "table1.html").write_bytes(base64.b64decode(data.split(",", 1)[1]))
    cells = re.findall(r"<td>(.*?)</td>", dom((tmp_path / "table1.html").as_uri()))
    with open(report / "results" / "table1" / "table1.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        assert any(c.startswith(f"{float(r['mean']):.2f} ± {float(r['std'] or 0):.2f}") for c in cells), (r, cells)
    assert {"MLP", "ScaleGMN"} <= set(cells)
