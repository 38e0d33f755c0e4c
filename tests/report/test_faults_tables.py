"""A table that outlives its inputs, and what a killed table job leaves (issue 11, items 4, 5).

`write_table` records the metrics files it read (provenance.json, inside the table folder, so it
is renamed into place with the table); `scalegmn verify results/table1` checks them.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from scalegmn.cli import main
from scalegmn.report.tables import verify_table, write_table
from scalegmn.train.experiments import TableConfig

from .test_tables import TABLE, _fake_jobs


@pytest.fixture
def built(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    table = TableConfig.from_mapping("tables.table1", "table1", TABLE)
    metrics, history, _ = _fake_jobs(tmp_path, table)
    past = time.time() - 60  # the train jobs finished a minute before the table
    for p in [*metrics.values(), *history.values()]:
        os.utime(p, (past, past))
    out = tmp_path / "results" / "table1"
    write_table(table, metrics, history, out)
    return table, metrics, history, out


def test_the_table_records_the_metrics_files_it_was_built_from(built):
    table, metrics, _, out = built
    record = json.loads((out / "provenance.json").read_text())
    assert record["table"] == "table1"
    assert len(record["inputs"]) == len(metrics) == 8
    first = record["inputs"][0]
    assert (out / first["metrics"]).resolve() == metrics[(first["view"], first["model"], first["seed"])].resolve()
    assert len(first["metrics_sha256"]) == 64 and first["row"] == "MLP" and first["column"] == "MNIST"


def test_verify_passes_on_a_fresh_table(built, capsys):
    *_, out = built
    assert verify_table(out) == []
    assert main(["verify", "results/table1"]) == 0
    assert "ok" in capsys.readouterr().out


def test_verify_reports_a_missing_metrics_file(built, capsys):
    _, metrics, _, out = built
    metrics[("mnist", "scalegmn", 1)].unlink()
    assert main(["verify", "results/table1"]) == 1
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines == [
        "results/table1: cell ScaleGMN / MNIST (seed 1): train/mnist/scalegmn/seed1/metrics.json is missing"
    ]
    assert "snakemake results/table1 --cores 2 --forcerun table" in captured.err


def test_verify_reports_metrics_newer_than_the_table_and_changed_ones(built, capsys):
    _, metrics, _, out = built
    metrics[("fmnist", "mlp", 0)].touch()  # newer (same content)
    changed = metrics[("mnist", "mlp", 1)]
    st = changed.stat()
    changed.write_text(json.dumps({"value": 0.99, "metric": "accuracy"}))
    os.utime(changed, (st.st_atime, st.st_mtime))  # changed, with the old time
    problems = verify_table(out)
    assert len(problems) == 2
    newer = next(p for p in problems if "cell MLP / F-MNIST (seed 0)" in p)
    assert "fmnist/mlp/seed0/metrics.json is newer than the table" in newer
    edited = next(p for p in problems if "cell MLP / MNIST (seed 1)" in p)
    assert "mnist/mlp/seed1/metrics.json has changed since the table was built" in edited
    assert main(["verify", str(out)]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == 2


def test_verify_names_a_table_without_provenance(built, capsys):
    *_, out = built
    (out / "provenance.json").unlink()
    assert main(["verify", "results/table1"]) == 1
    out_lines = capsys.readouterr().out.strip().splitlines()
    assert len(out_lines) == 1 and out_lines[0].startswith("results/table1/provenance.json: missing")


def test_a_killed_table_jobs_temporary_folder_is_removed_on_rerun(built):
    table, metrics, history, out = built
    orphan = out.with_name("table1.tmp")  # what a table job killed mid-write leaves
    (orphan / "figures").mkdir(parents=True)
    (orphan / "table1.csv").write_text("half a table\n")
    write_table(table, metrics, history, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["table1"]
