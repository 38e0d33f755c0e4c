"""ScaleGMN on the CNN Wild Park stand-in (real checkpoint format, six architectures): built
from the split's ZooSpec, invariant to every network's own symmetries in float64 (control: a
jitter), and trainable with micro-batches of a MixedBatch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scalegmn.data.formats import wild_park
from scalegmn.data.split_protocol import MixedSplit
from scalegmn.data.standins.zoos import build_standin
from scalegmn.execution import ExecutionConfig
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.train.loop import _batch_loss, optimizer_step
from scalegmn.weightspace.batch import MixedBatch
from scalegmn.weightspace.graph import ZooSpec
from scalegmn.weightspace.symmetry import random_symmetry
from scalegmn.weightspace.testing import assert_symmetric, jitter, relative_change


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> MixedSplit:
    root: Path = tmp_path_factory.mktemp("wp") / "cnn_wild_park"
    build_standin("cnn_wild_park", root, size="tiny", seed=0)
    nets = [wild_park.read_network(p) for p in wild_park.list_files(root)]
    return MixedSplit.from_networks(nets, y=torch.tensor([n.target for n in nets]))


@pytest.mark.parametrize("name", ["cifar10/scalegmn_hetero", "cifar10/scalegmn_hetero_bidir"])
def test_standin_batches_are_invariant_to_each_networks_symmetries(split, name):
    config = get_preset(name).model.override({"d_hid": 10, "n_layers": 3})
    zoo = ZooSpec.covering(split.specs)
    model = build_model(config, zoo, task="generalization", n_outputs=1).double().eval()
    batch = split.get(list(range(split.size)))
    batch = MixedBatch(tuple(g.to(torch.float64) for g in batch.groups), y=batch.y, index=batch.index)
    assert len(batch.groups) == 6 and any(g.spec.residual for g in batch.groups)
    gen = torch.Generator().manual_seed(0)
    moved = MixedBatch(tuple(random_symmetry(g, gen) for g in batch.groups))
    ctrl = MixedBatch(tuple(jitter(g, seed=k) for k, g in enumerate(batch.groups)))
    with torch.no_grad():
        ref = model(batch)
        assert_symmetric(relative_change(ref, model(moved)), relative_change(ref, model(ctrl)),
                         what=name)


def test_standin_trains_with_micro_batches(split):
    config = get_preset("cifar10/scalegmn_hetero").model.override({"d_hid": 8, "n_layers": 2})
    execution = ExecutionConfig().override({"micro_batch_size": 5})
    model = build_model(config, ZooSpec.covering(split.specs), task="generalization", n_outputs=1,
                        execution=execution)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = split.get(list(range(split.size)))
    before = [p.detach().clone() for p in model.parameters()]
    loss = optimizer_step(model, opt, batch, lambda part: _batch_loss(model, part, "generalization", None)[0],
                          clip_grad_norm=10.0, execution=execution)
    assert bool(torch.isfinite(loss))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
