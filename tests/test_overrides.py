"""Command-line overrides (scalegmn/overrides.py): typed --config values, null removes an entry,
`only:` selections and `run:` modes, with one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scalegmn import overrides
from scalegmn.errors import ConfigError
from scalegmn.train.experiments import PipelineConfig

REPO = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((REPO / "config.yaml").read_text())


def _jobs(config: dict) -> list[tuple]:
    return PipelineConfig.from_mapping(config).experiments.jobs()


def test_typed_reads_snakemakes_strings_as_yaml():
    # What Snakemake hands over for --config 'tables={table1: {seeds: [0], optim: {lr: 1e-3}}}' x=null
    raw = {"tables": {"table1": {"seeds": ["0"], "optim": {"lr": "1e-3", "epochs": "null"}, "title": "A b"}}}
    assert overrides.typed(raw) == {"tables": {"table1": {"seeds": [0], "optim": {"lr": 0.001, "epochs": None},
                                                          "title": "A b"}}}


def test_merge_is_deep_and_lists_replace():
    base = {"tables": {"t": {"seeds": [0, 1, 2], "rows": {"a": 1, "b": 2}}}}
    assert overrides.merge(base, {"tables": {"t": {"seeds": [0]}}}) == {"tables": {"t": {"seeds": [0], "rows": {"a": 1, "b": 2}}}}
    assert base["tables"]["t"]["seeds"] == [0, 1, 2]  # the base is not changed


def test_null_removes_rows_columns_tables():
    config = overrides.merge(SHIPPED, {"tables": {"table1": {"rows": {"gmn": None}, "columns": {"cifar10_aug": None}},
                                                  "table3": None}})
    jobs = _jobs(config)
    assert not any(m == "gmn" and t == "classification" for t, _, m, _ in jobs)
    assert not any(v == "cifar10_aug" for _, v, _, _ in jobs) and not any(t == "editing" for t, *_ in jobs)
    rows = len(SHIPPED["tables"]["table1"]["rows"]) - 1
    assert len([j for j in jobs if j[0] == "classification"]) == 3 * rows * 3  # columns x rows x seeds


def test_only_keeps_the_named_tables_columns_rows_and_seeds():
    jobs = _jobs({**SHIPPED, "only": "table1:mnist:scalegmn"})
    assert jobs == [("classification", "mnist", "scalegmn", s) for s in (0, 1, 2)]
    jobs = _jobs({**SHIPPED, "only": "table1:mnist,fmnist:*:1;table3"})
    assert {(t, v) for t, v, _, _ in jobs} == {("classification", "mnist"), ("classification", "fmnist"), ("editing", "mnist")}
    rows1, rows3 = (len(SHIPPED["tables"][t]["rows"]) for t in ("table1", "table3"))
    assert {s for t, _, _, s in jobs if t == "classification"} == {1} and len(jobs) == 2 * rows1 + rows3 * 3
    assert _jobs({**SHIPPED, "only": ["table2::statnn:0"]}) == [
        ("generalization", v, "statnn", 0) for v in SHIPPED["tables"]["table2"]["columns"]]


@pytest.mark.parametrize(("only", "words"), [
    ("table1:mnsit", "column 'mnsit' is not in the table"),
    ("tabel1", "table 'tabel1'"),
    ("table1:::7", "seed '7'"),
    ("table1:a:b:c:d", "5 parts"),
    (3, "must be TABLE"),
])
def test_a_bad_selection_is_one_line_naming_only(only, words):
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_mapping({**SHIPPED, "only": only})
    assert err.value.key == "only" and words in str(err.value) and "\n" not in str(err.value)


def test_run_quick_and_paper():
    quick = PipelineConfig.from_mapping({**SHIPPED, "run": "quick"}).experiments
    assert {s for *_, s in quick.jobs()} == {0}
    job = quick.job("classification", "mnist", "scalegmn", 0)
    assert job.optim.max_steps == 100 and job.optim.eval_every_steps == 25 and job.model.d_hid == 16
    paper = PipelineConfig.from_mapping({**SHIPPED, "run": "paper"}).experiments
    job = paper.job("classification", "mnist", "scalegmn", 0)
    assert job.model.d_hid == 128 and job.optim.max_steps is None  # the mnist_cls/scalegmn preset
    with pytest.raises(ConfigError, match="run"):
        PipelineConfig.from_mapping({**SHIPPED, "run": "fast"})
