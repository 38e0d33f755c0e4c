"""Config mistakes stop the run when the Snakefile is parsed, with one line naming the key
(issue 11, item 10; issue 10, item 2): every misspelt top-level key, a column naming an undefined
view, an unknown preset, a view of an unknown dataset, a negative or zero `max_steps`, a negative
`lr`, a `local.path` that does not exist. The schema (PipelineConfig) is checked directly for
each; a dry run through Snakemake for a few."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from scalegmn.errors import ConfigError
from scalegmn.train.experiments import ExperimentsConfig, PipelineConfig

from .test_rerun import REPO, copy_workflow, snakemake

TINY = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "nowhere" / "mnist-inrs")


# (edit of the tiny config, the key the one line must name, words it must hold)
def _rename(config: dict, old: str, new: str) -> None:
    config[new] = config.pop(old)


CASES = {
    "top-level-typo": (
        lambda c, tmp: _rename(c, "training", "trainig"),
        "'trainig'", "did you mean 'training'?",
    ),
    "top-level-typo-datasets": (
        lambda c, tmp: _rename(c, "datasets", "datsets"),
        "'datsets'", "did you mean 'datasets'?",
    ),
    "top-level-typo-views": (
        lambda c, tmp: _rename(c, "views", "veiws"),
        "'veiws'", "did you mean 'views'?",
    ),
    "top-level-typo-tables": (
        lambda c, tmp: _rename(c, "tables", "tabels"),
        "'tabels'", "did you mean 'tables'?",
    ),
    "unknown-preset": (
        lambda c, tmp: c["tables"]["table1"]["columns"]["mnist"].update(preset="mnist_cls/scalegnm"),
        "tables.table1.columns.mnist.preset", "is unknown; choose one of",
    ),
    "view-of-unknown-dataset": (
        lambda c, tmp: c["views"]["mnist"].update(dataset="mnist_inrs"),
        "views.mnist.dataset", "is not under 'datasets'",
    ),
    "zero-max-steps": (
        lambda c, tmp: c["tables"]["table1"]["optim"].update(max_steps=0),
        "tables.table1.optim.max_steps", "0 must be at least 1",
    ),
    "negative-checkpoint-period": (
        lambda c, tmp: c["training"].update(checkpoint_every_steps=-5),
        "training.checkpoint_every_steps", "-5 must be at least 1",
    ),
    "undefined-view": (
        lambda c, tmp: c["tables"]["table1"]["columns"].update(mnst=c["tables"]["table1"]["columns"].pop("mnist")),
        "tables.table1.columns.mnst", "not defined under 'views'; did you mean 'mnist'?",
    ),
    "negative-max-steps": (
        lambda c, tmp: c["tables"]["table1"]["optim"].update(max_steps=-400),
        "tables.table1.optim.max_steps", "-400 must be at least 1",
    ),
    "negative-lr-of-a-row": (
        lambda c, tmp: c["tables"]["table1"]["rows"]["mlp"].update(optim={"lr": -0.003}),
        "tables.table1.rows.mlp.optim.lr", "-0.003 must be a finite number >= 0",
    ),
    "missing-local-path": (
        lambda c, tmp: c["datasets"]["mnist_inr"].update(source="local", local={"path": _missing(tmp)}),
        "datasets.mnist_inr.local.path", "does not exist",
    ),
}


def _edited(name: str, tmp_path: Path) -> dict:
    config = copy.deepcopy(TINY)
    CASES[name][0](config, tmp_path)
    return config


def _check(config: dict) -> None:
    """What the Snakefile runs at parse time (rules/startup.smk): the whole file, one schema."""
    PipelineConfig.from_mapping(config)


#: The mistakes also run end to end through `snakemake -n` (a few: each dry run costs seconds).
DRY_RUN_CASES = ["top-level-typo", "top-level-typo-tables", "undefined-view", "negative-max-steps",
                 "negative-lr-of-a-row", "missing-local-path"]


@pytest.mark.parametrize("name", list(CASES))
def test_the_mistake_is_a_config_error_naming_the_key(name, tmp_path):
    _, key, words = CASES[name]
    with pytest.raises(ConfigError) as err:
        _check(_edited(name, tmp_path))
    msg = str(err.value)
    assert key in msg and words in msg and "\n" not in msg and "<name>" not in msg
    if name == "missing-local-path":
        assert _missing(tmp_path) in msg


def test_the_tiny_config_itself_passes():
    _check(copy.deepcopy(TINY))


def test_the_key_named_is_where_the_override_was_set():
    """A bad value at table, column or row level names that level's key."""
    for where, set_it in (
        ("tables.table1.optim.lr", lambda t: t["optim"].update(lr=-1)),
        ("tables.table1.columns.fmnist.optim.lr", lambda t: t["columns"]["fmnist"].update(optim={"lr": -1})),
        ("tables.table1.rows.scalegmn.optim.lr", lambda t: t["rows"]["scalegmn"].update(optim={"lr": -1})),
    ):
        config = copy.deepcopy(TINY)
        set_it(config["tables"]["table1"])
        with pytest.raises(ConfigError) as err:
            ExperimentsConfig.from_mapping(config)
        assert err.value.key == where


@pytest.mark.parametrize("name", DRY_RUN_CASES)
def test_a_dry_run_stops_with_one_line_before_any_job(name, tmp_path):
    work = tmp_path / "wf"
    work.mkdir()
    copy_workflow(work, _edited(name, tmp_path))
    res = snakemake(work, "-n", "results/table1")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    _, key, words = CASES[name]
    lines = [line for line in out.splitlines() if key in line]
    assert len(lines) == 1, out[-3000:]
    assert lines[0].startswith("config.yaml: config key") and words in lines[0]
    assert "MissingInputException" not in out and "Job stats" not in out
    assert not (work / "results").exists()
