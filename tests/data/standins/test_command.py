"""``scalegmn standins`` writes the named zoos under --out."""

import json

from scalegmn.cli import main
from scalegmn.data.standins import zoos


def test_cli_builds_named_standins(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(
        zoos.SIZES["tiny"], "mnist_inr", {"n_train": 2, "n_test": 1, "fit_steps": 3, "init_draws": 1}
    )
    rc = main(["standins", "mnist_inr", "--out", str(tmp_path), "--size", "tiny", "--seed", "3"])
    assert rc == 0
    report = json.loads((tmp_path / "mnist-inrs" / "standin_report.json").read_text())
    assert report["seed"] == 3 and report["n_networks"] == 3
    assert "mnist_inr: 3 networks" in capsys.readouterr().out
