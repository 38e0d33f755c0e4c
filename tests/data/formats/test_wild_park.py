"""CNN Wild Park checkpoints: exact-format round trips, safe loading, clear errors, the split file."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
import torch

from scalegmn.data.formats import wild_park as wp
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, NetworkSpec


def wild_spec(channels=(3, 8, 4, 16), kernel=5, acts=("relu", "gelu", "identity"), residual=(-1, -1, 0)):
    n = len(channels) - 1
    return NetworkSpec((*channels, 10), (*acts, "identity"), layer_kinds=("conv",) * n + ("linear",),
                       kernel_size=(kernel, kernel), conv_padding=kernel // 2, residual=(*residual, -1))


def make(spec: NetworkSpec, seed: int = 0) -> Network:
    g = torch.Generator().manual_seed(seed)
    return Network(spec, tuple(torch.randn(spec.weight_shape(i), generator=g) for i in range(spec.n_layers)),
                   tuple(torch.randn(spec.bias_shape(i), generator=g) for i in range(spec.n_layers)))


@pytest.mark.parametrize("spec", [
    wild_spec(),
    wild_spec((3, 4, 4), 3, ("tanh", "sigmoid"), (-1, -1)),
    wild_spec((3, 16, 8, 4, 8, 4), 7, ("leaky_relu", "relu", "gelu", "identity", "tanh"), (-1, -1, 0, 1, 2)),
])
def test_round_trip_exact_format(tmp_path, spec):
    net = make(spec)
    path = wp.write_network(tmp_path, net, run="train_cnn_abc_00003", checkpoint="checkpoint_000040",
                            score=0.375, iteration=40)
    assert path == tmp_path / "train_cnn_abc_00003" / "checkpoint_000040" / "checkpoint.pt"
    back = wp.read_network(path)
    assert back.spec == spec
    assert all(torch.equal(a, b) for a, b in zip(net.weights, back.weights, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(net.biases, back.biases, strict=True))
    assert back.target == 0.375
    assert back.meta == {"run": "train_cnn_abc_00003", "step": 40,
                         "relpath": "train_cnn_abc_00003/checkpoint_000040/checkpoint.pt"}
    assert wp.list_files(tmp_path) == [path]


def test_written_pickle_names_omegaconf_and_the_missing_generator(tmp_path):
    import pickletools
    import zipfile

    path = wp.write_network(tmp_path, make(wild_spec()), run="r", checkpoint="c", score=0.5, iteration=1)
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert {"create_random_cnns CNNConfig", "omegaconf.dictconfig DictConfig",
            "omegaconf.listconfig ListConfig"} <= names
    assert "omegaconf" not in sys.modules and "create_random_cnns" not in sys.modules


def _throwaway_modules():
    """Modules named like omegaconf's and the generator's, with classes pickle can find."""
    mods = {name: types.ModuleType(name) for name in
            ("omegaconf", "omegaconf.dictconfig", "omegaconf.nodes", "create_random_cnns")}

    class DictConfig:
        def __init__(self, content):
            self._content = content
            self._metadata = None

    class AnyNode:
        def __init__(self, val):
            self._val = val

    class CNNConfig:  # referenced as a class, like the real object_type
        pass

    for cls, mod in ((DictConfig, "omegaconf.dictconfig"), (AnyNode, "omegaconf.nodes"),
                     (CNNConfig, "create_random_cnns")):
        cls.__module__, cls.__qualname__ = mod, cls.__name__
        setattr(mods[mod], cls.__name__, cls)
    return mods, DictConfig, AnyNode, CNNConfig


def test_reads_pickles_whose_modules_are_gone(tmp_path, monkeypatch):
    """A pickle made by ordinary torch.save with real classes, whose modules are then removed."""
    mods, DictConfig, AnyNode, CNNConfig = _throwaway_modules()
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = wild_spec((3, 8, 8), 3, ("relu", "tanh"), (-1, -1))
    net = make(spec, 1)
    ck = wp.checkpoint_dict(net, score=0.6, iteration=20)
    values = wp.config_from_spec(spec)
    cfg = DictConfig({k: AnyNode(v) for k, v in values.items()})
    cfg._metadata = CNNConfig
    ck["config"] = cfg
    path = tmp_path / "t" / "c" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    torch.save(ck, path)
    for name in mods:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ModuleNotFoundError):  # the plain loader cannot read it
        torch.load(path, weights_only=False)
    back = wp.read_network(path)
    assert back.spec == spec and back.target == 0.6
    assert "create_random_cnns" not in sys.modules and "omegaconf.nodes" not in sys.modules


class _Evil:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_never_runs_code_from_the_pickle(tmp_path):
    """A global call (os.system) in the pickle yields an inert stub; the command never runs."""
    marker = tmp_path / "ran"
    ck = wp.checkpoint_dict(make(wild_spec()), score=0.1, iteration=1)
    ck["optimizer"] = {"payload": _Evil(str(marker))}
    path = wp.write_checkpoint(tmp_path / "r" / "c" / "checkpoint.pt", ck)
    loaded = wp.load_checkpoint(path)
    assert not marker.exists()
    assert isinstance(loaded["optimizer"]["payload"], wp.Stub)
    assert wp.read_network(path).target == 0.1


def _write(tmp_path: Path, ck: dict) -> Path:
    return wp.write_checkpoint(tmp_path / "run" / "ck" / "checkpoint.pt", ck)


def test_truncated_and_corrupt_files_give_one_line(tmp_path):
    path = wp.write_network(tmp_path, make(wild_spec()), run="r", checkpoint="c", score=0.5, iteration=1)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        wp.read_network(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    path.write_bytes(b"<html>login</html>")
    with pytest.raises(DataError, match="HTML"):
        wp.read_network(path)
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        wp.read_network(path)


def test_config_and_state_dict_must_agree(tmp_path):
    spec = wild_spec()
    ck = wp.checkpoint_dict(make(spec), score=0.5, iteration=1)
    ck["model"]["layers.1.weight"] = torch.zeros(4, 8, 3, 3)
    with pytest.raises(DataError, match=r"layers\.1\.weight.*shape \[4, 8, 3, 3\], expected \[4, 8, 5, 5\]"):
        wp.read_network(_write(tmp_path, ck))
    ck = wp.checkpoint_dict(make(spec), score=0.5, iteration=1)
    del ck["model"]["fc.bias"]
    with pytest.raises(DataError, match="missing key 'fc.bias'"):
        wp.read_network(_write(tmp_path, ck))
    ck = wp.checkpoint_dict(make(spec), score=0.5, iteration=1)
    values = wp.config_from_spec(spec) | {"n_layers": 5}
    ck["config"] = wp.omegaconf_config(values)
    with pytest.raises(DataError, match="n_layers = 5"):
        wp.read_network(_write(tmp_path, ck))
    ck["config"] = wp.omegaconf_config(wp.config_from_spec(spec) | {"activation": ["relu", "swish", "none"]})
    with pytest.raises(DataError, match="activation 'swish'"):
        wp.read_network(_write(tmp_path, ck))
    ck["config"] = wp.omegaconf_config(wp.config_from_spec(spec) | {"residual": [-1, 0, -1]})
    with pytest.raises(DataError, match="no valid network.*residual"):
        wp.read_network(_write(tmp_path, ck))
    ck = wp.checkpoint_dict(make(spec), score=0.5, iteration=1)
    del ck["last_result"]
    with pytest.raises(DataError, match="test/acc"):
        wp.read_network(_write(tmp_path, ck))


def test_plain_dict_config_is_read_too(tmp_path):
    spec = wild_spec()
    ck = wp.checkpoint_dict(make(spec), score=0.5, iteration=3)
    ck["config"] = wp.config_from_spec(spec) | {"activation": "relu"}
    back = wp.read_network(_write(tmp_path, ck))
    assert back.spec.activations == ("relu", "relu", "relu", "identity")


def test_split_file_round_trip_and_errors(tmp_path):
    splits = {"train": wp.SplitEntry(["zoo/a/c1/checkpoint.pt"], [0.5], [1]),
              "val": wp.SplitEntry([], [], []), "test": wp.SplitEntry(["zoo/b/c1/checkpoint.pt"], [0.25], [10])}
    path = wp.write_splits(tmp_path / wp.SPLITS_FILE, splits)
    assert wp.read_splits(path) == splits
    assert wp.split_key("dataset/cifar10_zooV2/a/c1/checkpoint.pt") == "a/c1/checkpoint.pt"
    path.write_text('{"train": {"path": ["x"], "score": [1, 2]}}')
    with pytest.raises(DataError, match="'score' must be a list as long as 'path'"):
        wp.read_splits(path)
    path.write_text("{not json")
    with pytest.raises(DataError, match="not a readable split JSON"):
        wp.read_splits(path)
