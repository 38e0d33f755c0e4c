"""Sibling positives of the embedding task (``optim.positive: sibling``): the draw, the row
alignment of a MixedBatch, the positives' embeddings on CNN Wild Park (float64, invariant
encoder, with a control), sibling retrieval, and a short training run."""

from __future__ import annotations

import pytest
import torch

from scalegmn.data.formats import wild_park
from scalegmn.data.split_protocol import MemorySplit, MixedSplit
from scalegmn.data.standins.zoos import build_standin
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import OptimConfig, get_preset
from scalegmn.train.contrastive import (
    Contrastive,
    Siblings,
    _aligned,
    embed,
    evaluate_split,
    positive_embeddings,
    retrieval_report,
    split_embeddings,
)
from scalegmn.train.interpolation import interpolation_metrics
from scalegmn.train.loop import fit
from scalegmn.weightspace.batch import MixedBatch
from scalegmn.weightspace.graph import ZooSpec
from scalegmn.weightspace.network import NetworkSpec
from scalegmn.weightspace.testing import random_network


def _memory_split(sources: list[str]) -> MemorySplit:
    net = random_network(NetworkSpec((2, 4, 1), ("sine", "identity")), (len(sources),), seed=0)
    return MemorySplit(net=net, y=torch.zeros(len(sources), dtype=torch.long), sources=sources)


def _wp(run: int, ck: int) -> str:
    return f"zoo/TrainCNN_{run:05d}/checkpoint_{ck:06d}/checkpoint.pt"


def test_a_drawn_sibling_is_another_member_of_the_group_and_every_one_is_drawn():
    sources = [_wp(0, 1), _wp(1, 1), _wp(0, 2), "alone.pth", _wp(0, 3), _wp(1, 2)]
    sib = Siblings(_memory_split(sources))
    assert sib.any
    index = torch.arange(len(sources)).repeat(400)
    drawn = sib.draw(index, torch.Generator().manual_seed(0)).reshape(400, -1)
    run = [0, 1, 0, None, 0, 1]
    for i in range(len(sources)):
        got = set(drawn[:, i].tolist())
        if run[i] is None:
            assert got == {i}  # no sibling: itself
        else:
            others = {j for j in range(len(sources)) if run[j] == run[i] and j != i}
            assert got == others  # never itself, never another run, each sibling drawn
    assert not Siblings(_memory_split(["a.pth", "b.pth"])).any


def test_aligned_reorders_rows_with_repeats():
    wanted = torch.tensor([5, 2, 5, 9, 2])
    got = torch.tensor([2, 2, 9, 5, 5])
    assert torch.equal(got[_aligned(wanted, got)], wanted)


@pytest.fixture(scope="module")
def wild_park_pairs(tmp_path_factory) -> MixedSplit:
    """The tiny Wild Park stand-in with two checkpoints per run: each network's sibling is known."""
    root = tmp_path_factory.mktemp("wp") / "cnn_wild_park"
    build_standin("cnn_wild_park", root, size="tiny", seed=0)
    files = [p for p in wild_park.list_files(root) if not str(p).split("/")[-2].endswith("3")]
    nets = [wild_park.read_network(p) for p in files]
    return MixedSplit.from_networks(nets, y=torch.tensor([n.target for n in nets]))


def _encoder(split: MixedSplit):
    config = get_preset("cifar10/scalegmn_hetero").model.override({"d_hid": 10, "n_layers": 3, "embed_dim": 6})
    return build_model(config, ZooSpec.covering(split.specs), task="embedding", n_outputs=6)


def test_sibling_positives_of_a_mixed_batch_are_the_siblings_embeddings(wild_park_pairs):
    """With no noise, an invariant encoder embeds each network's positive exactly as its sibling
    (another checkpoint of its run), in the batch's row order; the control is the network itself."""
    split = wild_park_pairs
    groups = [str(s).split("/")[-3] for s in split.sources]
    assert all(groups.count(g) == 2 for g in groups) and len(set(groups)) > 2
    model = _encoder(split).double().eval()
    objective = Contrastive.of(OptimConfig().override({"positive": "sibling", "positive_noise": 0.0}), split)
    batch = split.get(torch.arange(split.size))
    batch = MixedBatch(tuple(g.to(torch.float64) for g in batch.groups), y=batch.y, index=batch.index)
    with torch.no_grad():
        z_pos = positive_embeddings(model, batch, objective)
        rows = batch.index.tolist()
        sibling = [next(j for j in range(split.size) if groups[j] == groups[i] and j != i) for i in rows]
        want = torch.cat([embed(model, _double(split.get([j]))) for j in sibling])
        itself = torch.cat([embed(model, _double(split.get([i]))) for i in rows])
    err, ctrl = (z_pos - want).abs().max().item(), (z_pos - itself).abs().max().item()
    # float64 rounding (~1e-12) against checkpoints of one run, which an untrained encoder
    # embeds close together (~5e-4 apart) but not equal
    assert err < 1e-9 and ctrl > 1e-6, (err, ctrl)


def _double(b: MixedBatch) -> MixedBatch:
    return MixedBatch(tuple(g.to(torch.float64) for g in b.groups), y=b.y, index=b.index)


def test_sibling_retrieval_finds_the_run_and_needs_shared_groups():
    z = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]], dtype=torch.float64), dim=-1)
    m = retrieval_report(z, z, None, torch.tensor([0, 0, 1, 1]))
    assert m["sibling_recall_at_1"] == 1.0 and m["sibling_mrr"] == 1.0
    crossed = retrieval_report(z, z, None, torch.tensor([0, 1, 0, 1]))  # control: wrong runs
    assert crossed["sibling_recall_at_1"] == 0.0
    assert "sibling_mrr" not in retrieval_report(z, z, None, torch.arange(4))  # nobody has a sibling


def test_an_embedding_run_with_sibling_positives_trains_and_reports_sibling_retrieval(wild_park_pairs):
    split = wild_park_pairs
    torch.manual_seed(0)
    model = _encoder(split)
    loop = OptimConfig().override({"epochs": None, "max_steps": 4, "eval_every_steps": 2, "batch_size": 6,
                                   "warmup_steps": 1, "positive": "sibling"})
    result = fit(model, loop, "embedding", {"train": split, "val": split, "test": split}, seed=0)
    test = result.selected["test"]
    assert 0.0 <= test["sibling_recall_at_1"] <= 1.0 and test["sibling_mrr"] > 0
    scores = evaluate_split(model, split, 6, torch.device("cpu"), Contrastive.of(loop))
    assert set(scores) >= {"recall_at_1", "sibling_recall_at_1", "sibling_mrr"}


def test_a_mixed_zoo_has_no_inr_interpolation_and_embeds_in_row_order(wild_park_pairs):
    """The embedding job's end on a Wild Park view: no INR midpoint metrics (not INRs, many
    architectures), and each network's embedding in its split row (the MixedBatch regroups rows)."""
    split = wild_park_pairs
    model = _encoder(split).eval()
    assert interpolation_metrics(model, split, 0.1) == {}
    z = split_embeddings(model, split, 7, "cpu")
    with torch.no_grad():
        one = torch.cat([embed(model, split.get([i])).double() for i in range(split.size)])
    assert (z - one).abs().max() < 1e-5  # float32 rounding of batched vs single forwards
    assert (z - one.flip(0)).abs().max() > 1e-3  # control: another order
