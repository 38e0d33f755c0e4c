"""The Small CNN Zoo with every checkpoint (``checkpoints: all``): ingest, splits that keep a
run together and leave the paper's final-checkpoint splits as they were, views that choose,
siblings by run, and the config's one-line errors."""

from __future__ import annotations

import pytest

from scalegmn.data.cache import view_rows
from scalegmn.data.config import DataConfig
from scalegmn.data.ingest import ingest_dataset
from scalegmn.data.network_set import read_network_set
from scalegmn.data.siblings import sibling_groups
from scalegmn.data.splits import make_splits
from scalegmn.errors import ConfigError


@pytest.fixture
def tables(zoo_root, tmp_path):
    """The 12-run x 9-checkpoint zoo ingested both ways."""
    out = {}
    for mode in ("final", "all"):
        ingest_dataset(zoo_root, tmp_path / f"{mode}.h5", tmp_path / f"{mode}.tsv", dataset="cifar10_gs",
                       fmt="cnn_zoo", checkpoints=mode)
        out[mode] = read_network_set(tmp_path / f"{mode}.h5")
    return out


def test_all_keeps_every_checkpoint_and_its_run(tables):
    final, every = tables["final"], tables["all"]
    assert final.size == 12 and every.size == 12 * 9
    assert sorted(set(every.columns["step"].tolist())) == [0, 1, 2, 3, 20, 40, 60, 80, 86]
    assert (final.columns["step"] == 86).all() and "run" not in final.columns
    run = every.columns["run"].astype(str)
    assert all(str(s).endswith(f"?run={r}&step={t}") for s, r, t in
               zip(every.columns["source"], run, every.columns["step"], strict=True))


def test_splits_keep_runs_together_and_the_final_splits_unchanged(tables):
    final, every = tables["final"], tables["all"]
    s_final, s_all = make_splits(final), make_splits(every)
    run = every.columns["run"].astype(str)
    seen = {}
    for name in ("train", "val", "test"):
        for r in s_all[name]:
            assert seen.setdefault(run[r], name) == name  # a run never straddles two splits
        # the final checkpoints, in order, are the paper's split exactly
        last = [int(every.columns["zoo_row"][r]) for r in s_all[name] if every.columns["step"][r] == 86]
        assert last == [int(final.columns["zoo_row"][r]) for r in s_final[name]]
    assert sum(len(s_all[n]) for n in ("train", "val", "test")) == 9 * sum(len(s_final[n]) for n in ("train", "val", "test"))


def test_views_choose_final_or_all_and_siblings_are_runs(tables):
    final, every = tables["final"], tables["all"]
    s_final, s_all = make_splits(final), make_splits(every)
    for split in ("train", "test"):
        want, _ = view_rows(final, s_final, {"activation": "relu"}, split)
        got, _ = view_rows(every, s_all, {"activation": "relu"}, split)  # checkpoints: final (default)
        assert every.columns["zoo_row"][got].tolist() == final.columns["zoo_row"][want].tolist()
        rows, _ = view_rows(every, s_all, {"activation": "relu", "checkpoints": "all"}, split)
        assert len(rows) == 9 * len(want)
        groups = sibling_groups(every.columns["source"][rows].astype(str).tolist())
        run = every.columns["run"].astype(str)[rows]
        assert len(set(groups.tolist())) == len(set(run.tolist()))
        assert all((groups == g).sum() == 9 for g in set(groups.tolist()))
    # final-checkpoint ids have no run: each is alone (control)
    ids = final.columns["source"].astype(str).tolist()
    assert len(set(sibling_groups(ids).tolist())) == len(ids)


def _config(dataset: dict, view: dict) -> dict:
    return {"datasets": {"cifar10_gs": {"source": "standin", **dataset}, "mnist_inr": {"source": "standin"}},
            "views": {"runs": {"dataset": "cifar10_gs", "activation": "relu", **view}}}


def test_config_checks_the_choice_with_one_line_errors():
    data = DataConfig.from_mapping(_config({"checkpoints": "all"}, {"checkpoints": "all"}))
    assert data.views["runs"].checkpoints == "all" and data.datasets["cifar10_gs"].checkpoints == "all"
    assert "checkpoints" not in data.views["runs"].__class__.from_mapping(
        "x", {"dataset": "cifar10_gs", "activation": "relu"}, data.datasets).params()
    with pytest.raises(ConfigError, match=r"views\.runs\.checkpoints.*datasets\.cifar10_gs\.checkpoints: all"):
        DataConfig.from_mapping(_config({}, {"checkpoints": "all"}))
    bad = _config({}, {})
    bad["datasets"]["mnist_inr"]["checkpoints"] = "all"
    with pytest.raises(ConfigError, match=r"datasets\.mnist_inr\.checkpoints"):
        DataConfig.from_mapping(bad)
    with pytest.raises(ConfigError, match=r"datasets\.cifar10_gs\.checkpoints"):
        DataConfig.from_mapping(_config({"checkpoints": "every"}, {}))
