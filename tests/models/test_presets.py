"""Preset names, config overrides and their errors, and the `scalegmn presets` command."""

from __future__ import annotations

import argparse
import json

import pytest

from scalegmn.errors import ConfigError
from scalegmn.models.catalogue import run
from scalegmn.models.presets import ModelConfig, OptimConfig, get_preset, list_presets

NAMES = [
    "mnist_cls/scalegmn", "mnist_cls/scalegmn_bidir",
    "fmnist_cls/scalegmn", "fmnist_cls/scalegmn_bidir",
    "cifar_inr_cls/scalegmn", "cifar_inr_cls/scalegmn_bidir",
    "cifar_inr_cls/scalegmn_aug", "cifar_inr_cls/scalegmn_aug_bidir",
    "cifar10/scalegmn_relu", "cifar10/scalegmn_relu_bidir",
    "cifar10/scalegmn_tanh", "cifar10/scalegmn_tanh_bidir",
    "cifar10/scalegmn_hetero", "cifar10/scalegmn_hetero_bidir",
    "svhn/scalegmn_relu", "svhn/scalegmn_relu_bidir",
    "svhn/scalegmn_tanh", "svhn/scalegmn_tanh_bidir",
    "mnist_editing/scalegmn", "mnist_editing/scalegmn_bidir",
]


def test_the_twenty_presets_by_name():
    assert sorted(n for n in list_presets() if get_preset(n).model.kind == "scalegmn") == sorted(NAMES)
    tasks = {get_preset(n).task for n in NAMES}
    assert tasks == {"classification", "generalization", "editing"}
    assert get_preset("cifar10/scalegmn_tanh_bidir").optim.lr == 5e-4
    assert get_preset("cifar_inr_cls/scalegmn_aug").optim.max_steps == 200_000


def test_override_accepts_dotted_and_nested_keys():
    base = get_preset("mnist_cls/scalegmn").model
    a = base.override({"d_hid": 8, "model.n_layers": 2})
    b = base.override({"model": {"d_hid": 8, "n_layers": 2}})
    assert a == b and a.d_hid == 8 and a.n_layers == 2 and base.d_hid == 128
    assert json.loads(json.dumps(a.to_dict()))["d_hid"] == 8
    opt = get_preset("mnist_cls/scalegmn").optim.override({"optim.batch_size": 16, "lr": 1})
    assert opt.batch_size == 16 and opt.lr == 1.0


@pytest.mark.parametrize(("mapping", "key"), [
    ({"d_hidden": 8}, "model.d_hidden"),
    ({"d_hid": "8"}, "model.d_hid"),
    ({"layer_norm": 1}, "model.layer_norm"),
    ({"symmetry": "rotation"}, "model.symmetry"),
    ({"n_layers": 0}, "model.n_layers"),
    ({"num_mlps": 4}, "model.num_mlps"),
])
def test_bad_model_overrides_name_the_key(mapping, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        ModelConfig().override(mapping)


def test_bad_optim_overrides_name_the_key():
    with pytest.raises(ConfigError, match="config key 'optim.batchsize'"):
        OptimConfig().override({"batchsize": 3})
    with pytest.raises(ConfigError, match="config key 'optim.epochs'"):
        OptimConfig().override({"epochs": None, "max_steps": None})
    with pytest.raises(ConfigError, match="config key 'preset'"):
        get_preset("mnist/scalegmn")


def test_presets_command_prints_both_counts(capsys):
    assert run(argparse.Namespace(names=["mnist_cls/scalegmn", "svhn/scalegmn_relu"])) == 0
    out = capsys.readouterr().out
    assert "1,772,042" in out.split("mnist_cls/scalegmn")[1].split("\n")[0]
    assert "unused readout MLP" in out


def test_symmetry_must_fit_the_zoo():
    from scalegmn.models.metanetworks import build_model
    from scalegmn.weightspace.network import cnn_zoo_spec, dws_siren_spec

    with pytest.raises(ConfigError, match="config key 'model.symmetry'.*ReLU"):
        build_model(ModelConfig(symmetry="sign"), cnn_zoo_spec("relu"), task="generalization",
                    n_outputs=1)
    with pytest.raises(ConfigError, match="config key 'model.symmetry'"):
        build_model(ModelConfig(symmetry="scale"), dws_siren_spec(), task="classification",
                    n_outputs=10)


def test_neural_graphs_presets_cite_their_source_and_build():
    from scalegmn.models.catalogue import preset_outputs, preset_spec
    from scalegmn.models.metanetworks import build_model
    from scalegmn.models.presets import PRESET_SOURCES

    ng = [n for n in list_presets() if get_preset(n).model.kind in ("ng_gnn", "ng_t")]
    assert {n.split("/")[0] for n in ng} == {"mnist_cls", "fmnist_cls", "cifar_inr_cls", "cifar10",
                                             "cnn_park", "mnist_editing"}
    for name in ng:
        assert "mkofinas/neural-graphs@" in PRESET_SOURCES[name]
        p = get_preset(name)
        build_model(p.model, preset_spec(name), task=p.task, n_outputs=preset_outputs(p))
    assert get_preset("cifar10/ng_gnn").model.d_hid == 256  # scripts/cnn_zoo_pna.sh
    assert get_preset("mnist_cls/ng_t").model.n_heads == 8
