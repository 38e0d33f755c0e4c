"""The dense WeightBatch fast path, the general PyG path and chunked checkpointing agree."""

from __future__ import annotations

import pytest
import torch

from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import ModelConfig, get_preset
from scalegmn.nn.pyg import collate, from_weight_batch
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import NetworkSpec
from scalegmn.weightspace.testing import flatten_output, random_network

B = 4


def outputs_and_grads(model, batch):
    model.zero_grad()
    out = flatten_output(model(batch))
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
    (out * weights).sum().backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
    return out.detach(), grads


def small(name, **overrides):
    preset = get_preset(name)
    config = preset.model.override({"d_hid": 10, "n_layers": 2, "dropout": 0.0, **overrides})
    model = build_model(config, preset_spec(name), task=preset.task, n_outputs=preset_outputs(preset))
    return model.double(), config


NAMES = ["mnist_cls/scalegmn", "mnist_cls/scalegmn_bidir", "fmnist_cls/scalegmn_bidir",
         "cifar10/scalegmn_hetero_bidir", "svhn/scalegmn_relu_bidir", "mnist_editing/scalegmn_bidir"]


@pytest.mark.parametrize("name", NAMES)
def test_dense_and_pyg_paths_agree_in_outputs_and_gradients(name):
    model, config = small(name)
    net = random_network(preset_spec(name), (B,))
    mask = torch.tensor([True, False, False, True]) if config.symmetry == "hetero" else None
    dense = WeightBatch(net, sign_mask=mask)
    out_d, grad_d = outputs_and_grads(model, dense)
    out_p, grad_p = outputs_and_grads(model, from_weight_batch(dense))
    torch.testing.assert_close(out_p, out_d, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_p, grad_d, rtol=1e-5, atol=1e-5)


def test_pyg_batch_mixes_layouts_and_activations():
    """Graphs of different depth/width and activation in one batch give what each gives alone."""
    specs = [NetworkSpec((2, 6, 5, 1), ("relu", "relu", "identity")),
             NetworkSpec((2, 4, 3, 4, 1), ("tanh", "tanh", "tanh", "identity")),
             NetworkSpec((2, 7, 1), ("relu", "identity"))]
    nets = [random_network(s, (), seed=i) for i, s in enumerate(specs)]
    config = ModelConfig(symmetry="hetero", d_hid=8, n_layers=2, readout="full_graph",
                         mlp_on_io=True, num_mlps=3)
    model = build_model(config, specs[1], task="generalization", n_outputs=1).double().eval()
    with torch.no_grad():
        together = model(collate(nets))
        alone = torch.cat([model(collate([n])) for n in nets])
    torch.testing.assert_close(together, alone)
    assert together.shape == (3, 1)


@pytest.mark.parametrize("name", ["mnist_cls/scalegmn", "mnist_editing/scalegmn_bidir"])
def test_checkpointing_in_chunks_changes_nothing(name):
    model, _ = small(name)
    ckpt, _ = small(name, checkpoint=True, checkpoint_chunk=3)
    ckpt.load_state_dict(model.state_dict())
    batch = WeightBatch(random_network(preset_spec(name), (7,)))
    out_a, grad_a = outputs_and_grads(model, batch)
    out_b, grad_b = outputs_and_grads(ckpt, batch)
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(grad_b, grad_a)


def test_float32_on_the_default_device_runs_and_trains():
    model, _ = small("cifar10/scalegmn_relu")
    model = model.float()
    batch = WeightBatch(random_network(preset_spec("cifar10/scalegmn_relu"), (3,), dtype=torch.float32))
    out = model(batch)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_pyg_path_errors_are_clear():
    a = NetworkSpec((2, 5, 1), ("relu", "identity"))
    b = NetworkSpec((2, 5, 3), ("relu", "identity"))
    model = build_model(ModelConfig(symmetry="scale", d_hid=6, n_layers=1), b,
                        task="classification", n_outputs=2).double()
    mixed = collate([random_network(a, ()), random_network(b, ())])
    with pytest.raises(ValueError, match="same number of outputs"):
        model(mixed)
    with pytest.raises(ValueError, match="built for networks with 3 outputs, these have 1"):
        model(collate([random_network(a, ())]))
    deeper = NetworkSpec((2, 5, 5, 5, 5, 3), ("relu",) * 4 + ("identity",))
    with pytest.raises(ValueError, match="built for .* types"):
        model(collate([random_network(deeper, ())]))
    with pytest.raises(ValueError, match="takes one network"):
        collate([random_network(a, (2,))])
