"""Command-line overrides through `snakemake -n` (scalegmn/overrides.py, rules/startup.smk):
nested typed `--config` values, null removing a row, `only=` and `run=` selections, and a bad
selection stopping the run with one line."""

from __future__ import annotations

import re

import pytest
import yaml

from .test_rerun import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow  # each dry run imports torch: ~15 s on 2 shared cores

TINY = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    config = {**TINY, "tables": {"table1": {**TINY["tables"]["table1"], "seeds": [0, 1]}}}
    return copy_workflow(tmp_path_factory.mktemp("wf"), config)


def planned(work, *config: str) -> set[tuple[str, str, str]]:
    """(view, model, seed) of every train job a dry run of results/table1 plans."""
    res = snakemake(work, "-n", "results/table1", "--config", *config)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    return set(re.findall(r"results/train/classification/(\w+)/(\w+)/seed(\d+)/metrics\.json", res.stdout + res.stderr))


def test_without_overrides_every_job_is_planned(work):
    assert len(planned(work, "run=default")) == 2 * 2 * 2


def test_nested_config_values_are_typed(work):
    # Snakemake hands `seeds: ['1']` (strings) to the Snakefile; the schema would refuse them.
    jobs = planned(work, "tables={table1: {seeds: [1], optim: {lr: 1e-3}}}")
    assert {s for *_, s in jobs} == {"1"} and len(jobs) == 4


def test_null_drops_a_row_and_only_keeps_a_cell(work):
    assert {m for _, m, _ in planned(work, "tables={table1: {rows: {mlp: null}}}")} == {"scalegmn"}
    assert planned(work, "only=table1:mnist:scalegmn:0") == {("mnist", "scalegmn", "0")}
    assert {s for *_, s in planned(work, "run=quick")} == {"0"}


def test_a_bad_selection_stops_with_one_line(work):
    res = snakemake(work, "-n", "results/table1", "--config", "only=table1:mnsit")
    out = res.stdout + res.stderr
    lines = [ln for ln in out.splitlines() if "mnsit" in ln]
    assert res.returncode != 0 and len(lines) == 1 and lines[0].startswith("config.yaml: config key 'only'"), out[-2000:]


def test_the_catalog_test_config_is_a_tiny_run(tmp_path):
    # .test/config_basic overlays config.yaml (as the workflow catalog's CI runs it): 2 x 2 cells.
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    work = copy_workflow(tmp_path, shipped)
    res = snakemake(work, "-n", "results/table1", "--configfile", str(REPO / ".test" / "config_basic" / "config.yaml"))
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs = set(re.findall(r"results/train/classification/(\w+)/(\w+)/seed(\d+)/metrics\.json", res.stdout + res.stderr))
    assert jobs == {(v, m, "0") for v in ("mnist", "fmnist") for m in ("mlp", "scalegmn")}
