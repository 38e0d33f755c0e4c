"""The EXPERIMENTS config: typos stop the run naming the key; job settings are canonical."""

from __future__ import annotations

import copy
import json

import pytest
from snakemake.logging import format_dict

from scalegmn.errors import ConfigError
from scalegmn.execution import ExecutionConfig
from scalegmn.logs import ReadableJson
from scalegmn.train.experiments import ExperimentsConfig, TrainJob

BASE = {
    "training": {"device": "auto", "checkpoint_every_steps": 10},
    "tables": {
        "table1": {
            "task": "classification",
            "seeds": [0, 1],
            "model": {"n_layers": 2, "d_hid": 16},
            "optim": {"epochs": 2},
            "columns": {
                "mnist": {"label": "MNIST", "preset": "mnist_cls/scalegmn", "real": False},
                "fmnist": {"preset": "fmnist_cls/scalegmn", "real": True},
            },
            "rows": {
                "mlp": {"label": "MLP", "paper_row": "MLP", "model": {"kind": "mlp"}},
                "scalegmn_b": {"bidirectional": True},
            },
        }
    },
}


def test_jobs_and_settings():
    exp = ExperimentsConfig.from_mapping(BASE)
    assert len(exp.jobs("table1")) == 8
    s = json.loads(exp.job_settings("classification", "mnist", "scalegmn_b", 1))
    assert s["preset"] == "mnist_cls/scalegmn_bidir"
    assert s["model"] == {"n_layers": 2, "d_hid": 16}
    assert s["seed"] == 1
    mlp = json.loads(exp.job_settings("classification", "fmnist", "mlp", 0))
    assert mlp["model"]["kind"] == "mlp" and mlp["preset"] == "fmnist_cls/scalegmn"


def test_a_train_jobs_settings_read_as_key_value_pairs_in_the_report():
    """The train rule's params.settings (rules/experiments.smk wraps the JSON in ReadableJson), as
    Snakemake's HTML report formats a job's params: dotted key=value pairs, no escaped JSON;
    ``TrainJob.from_json`` still reads the value, and its repr (what reruns compare) is the JSON's."""
    text = ExperimentsConfig.from_mapping(BASE).job_settings("classification", "mnist", "scalegmn_b", 1)
    settings = ReadableJson(text)
    shown = format_dict({"settings": settings})
    assert shown == ("settings=execution={}, model.d_hid=16, model.n_layers=2, optim.epochs=2, "
                     "preset=mnist_cls/scalegmn_bidir, seed=1, task=classification, view=mnist"), shown
    assert TrainJob.from_json(settings) == TrainJob.from_json(text) and repr(settings) == repr(text)


def test_settings_do_not_depend_on_key_order():
    reordered = copy.deepcopy(BASE)
    t = reordered["tables"]["table1"]
    t["model"] = {"d_hid": 16, "n_layers": 2}
    t["columns"] = dict(reversed(list(t["columns"].items())))
    a = ExperimentsConfig.from_mapping(BASE)
    b = ExperimentsConfig.from_mapping(reordered)
    for job in a.jobs():
        assert a.job_settings(*job) == b.job_settings(*job)


def test_changing_one_model_changes_only_its_jobs():
    changed = copy.deepcopy(BASE)
    changed["tables"]["table1"]["rows"]["mlp"]["optim"] = {"lr": 0.01}
    a = ExperimentsConfig.from_mapping(BASE)
    b = ExperimentsConfig.from_mapping(changed)
    differ = {job for job in a.jobs() if a.job_settings(*job) != b.job_settings(*job)}
    assert differ == {job for job in a.jobs() if job[2] == "mlp"}


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda c: c["tables"]["table1"].update(colums={}), "tables.table1.colums", "did you mean 'columns'"),
        (lambda c: c["tables"]["table1"].update(task="classify"), "tables.table1.task", "classification"),
        (lambda c: c["tables"]["table1"].update(seeds=[0, 0]), "tables.table1.seeds", "distinct"),
        (lambda c: c["tables"]["table1"]["rows"]["mlp"].update(bidirectonal=True), "tables.table1.rows.mlp.bidirectonal", "bidirectional"),
        (lambda c: c["tables"]["table1"]["columns"]["mnist"].update(real="yes"), "tables.table1.columns.mnist.real", "true or false"),
        (lambda c: c["tables"]["table1"]["columns"]["mnist"].update(preset="mnist_cls/scalegnm"), "tables.table1.columns.mnist.preset", "unknown"),
        (lambda c: c["tables"]["table1"]["columns"]["mnist"].update(preset="cifar10/scalegmn_relu"), "tables.table1.columns.mnist.preset", "generalization"),
        (lambda c: c["tables"]["table1"]["model"].update(d_hidd=3), "model.d_hidd", "unknown key"),
        (lambda c: c["training"].update(device="gpu"), "training.device", "auto"),
        (lambda c: c["tables"]["table1"]["rows"]["mlp"].update(execution={"lean_min_m": 5}),
         "tables.table1.rows.mlp.execution.lean_min_m", "did you mean 'lean_min_mb'"),
        (lambda c: c["tables"]["table1"].update(execution={"micro_batch_size": 0}),
         "tables.table1.execution.micro_batch_size", "at least 1"),
        (lambda c: c["tables"]["table1"]["columns"]["mnist"].update(execution={"memory": "leen"}),
         "tables.table1.columns.mnist.execution.memory", "did you mean 'lean'"),
        (lambda c: c["tables"]["table1"]["model"].update(lean_min_mb=512),
         "tables.table1.model.lean_min_mb", "use execution.lean_min_mb"),
        (lambda c: c["tables"]["table1"]["rows"]["mlp"].update(optim={"micro_batch_size": 8}),
         "tables.table1.rows.mlp.optim.micro_batch_size", "use execution.micro_batch_size"),
    ],
)
def test_typos_name_the_key(edit, key, words):
    cfg = copy.deepcopy(BASE)
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        ExperimentsConfig.from_mapping(cfg)
    assert key in str(err.value)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_execution_overrides_merge_table_column_row():
    cfg = copy.deepcopy(BASE)
    table = cfg["tables"]["table1"]
    table["execution"] = {"lean_min_mb": 512, "micro_batch_size": 16}
    table["columns"]["fmnist"]["execution"] = {"micro_batch_size": 8}
    table["rows"]["mlp"]["execution"] = {"memory": "plain", "lean_min_mb": 1}
    exp = ExperimentsConfig.from_mapping(cfg)
    assert exp.job("classification", "mnist", "scalegmn_b", 0).execution == ExecutionConfig(
        lean_min_mb=512, micro_batch_size=16)
    assert exp.job("classification", "fmnist", "scalegmn_b", 0).execution == ExecutionConfig(
        lean_min_mb=512, micro_batch_size=8)
    mlp = exp.job("classification", "fmnist", "mlp", 0)
    assert mlp.execution == ExecutionConfig(memory="plain", lean_min_mb=1, micro_batch_size=8)
    assert json.loads(mlp.to_json())["execution"] == {"memory": "plain", "lean_min_mb": 1, "micro_batch_size": 8}
    assert TrainJob.from_json(mlp.to_json()) == mlp
    assert ExperimentsConfig.from_mapping(BASE).job("classification", "mnist", "mlp", 0).execution == ExecutionConfig()


@pytest.mark.parametrize(("model", "optim", "expected"), [
    ({"checkpoint": True, "checkpoint_chunk": 3}, {},
     ExecutionConfig(memory="checkpoint", checkpoint_chunk=3)),
    ({"checkpoint": True, "lean_autograd": True}, {}, ExecutionConfig(memory="checkpoint")),
    ({"checkpoint": False, "lean_autograd": False}, {}, ExecutionConfig(memory="plain")),
    ({"lean_autograd": True}, {}, ExecutionConfig()),
    ({"lean_min_mb": 512.0, "d_hid": 8}, {"micro_batch_size": 8, "lr": 0.01},
     ExecutionConfig(lean_min_mb=512.0, micro_batch_size=8)),
])
def test_settings_written_before_the_execution_section_map_their_memory_keys(model, optim, expected):
    # the settings of a best.pt written when these keys were model/optim keys
    old = {"task": "classification", "view": "mnist", "preset": "mnist_cls/scalegmn", "seed": 0,
           "model": model, "optim": optim}
    job = TrainJob.from_settings(old)
    assert job.execution == expected
    assert job.model_overrides == {k: v for k, v in model.items() if k == "d_hid"}
    assert job.optim_overrides == {k: v for k, v in optim.items() if k == "lr"}
    assert TrainJob.from_json(job.to_json()) == job  # and they are written the new way


def test_same_job_trained_differently_by_two_tables_is_refused():
    cfg = copy.deepcopy(BASE)
    other = copy.deepcopy(cfg["tables"]["table1"])
    other["model"] = {"n_layers": 3}
    cfg["tables"]["table9"] = other
    with pytest.raises(ConfigError, match="differently"):
        ExperimentsConfig.from_mapping(cfg)


def test_shipped_config_is_valid():
    from pathlib import Path

    import yaml

    cfg = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    exp = ExperimentsConfig.from_mapping(cfg)
    assert set(exp.tables) >= {"table1", "table2", "table3", "table4", "table5"}
    for t in exp.tables.values():
        assert len(t.seeds) >= 2
    baselines = ["dws", "nfn_np", "nfn_hnp", "ng_gnn", "ng_t"]
    assert [r.key for r in exp.tables["table1"].rows] == ["mlp", "gmn", *baselines, "scalegmn", "scalegmn_b"]
    assert [r.key for r in exp.tables["table2"].rows] == ["statnn", "gmn", *baselines[1:], "scalegmn", "scalegmn_b"]
    assert [r.key for r in exp.tables["table3"].rows] == ["mlp", *baselines, "scalegmn", "scalegmn_b"]
    assert [r.key for r in exp.tables["table4"].rows] == ["statnn", "gmn", "ng_t", "scalegmn", "scalegmn_b"]
    assert [r.key for r in exp.tables["table5"].rows] == ["mlp", "gmn", "scalegmn", "scalegmn_b"]


def test_embedding_tables_take_invariant_presets_only():
    cfg = {"tables": {"t": {"task": "embedding", "seeds": [0], "columns": {"mnist": {"preset": "mnist_editing/scalegmn"}},
                            "rows": {"m": {}}}}}
    with pytest.raises(ConfigError, match="classification or generalization"):
        ExperimentsConfig.from_mapping(cfg)
    cfg["tables"]["t"]["columns"]["mnist"]["preset"] = "mnist_cls/scalegmn"
    assert ExperimentsConfig.from_mapping(cfg).job("embedding", "mnist", "m", 0).preset == "mnist_cls/scalegmn"
