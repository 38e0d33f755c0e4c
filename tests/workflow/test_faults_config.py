"""Config mistakes stop the run when the Snakefile is parsed, with one line naming the key
(issue 11, item 10): an unknown top-level key, a column naming an undefined view, a negative
`max_steps` or `lr`, a `local.path` that does not exist."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from scalegmn.data.config import check_local_paths, check_top_level_keys
from scalegmn.errors import ConfigError
from scalegmn.train.experiments import ExperimentsConfig

from .test_rerun import REPO, copy_workflow, snakemake

TINY = yaml.safe_load((REPO / "tests" / "workflow" / "tiny.yaml").read_text())


def _missing(tmp_path: Path) -> str:
    return str(tmp_path / "nowhere" / "mnist-inrs")


# (edit of the tiny config, the key the one line must name, words it must hold)
CASES = {
    "top-level-typo": (
        lambda c, tmp: c.update(trainig=c.pop("training")),
        "'trainig'", "did you mean 'training'?",
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
    """What the Snakefile runs at parse time on the TABLE/CONFIG side."""
    check_top_level_keys(config)
    check_local_paths(config)
    ExperimentsConfig.from_mapping(config)


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


@pytest.mark.parametrize("name", list(CASES))
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
