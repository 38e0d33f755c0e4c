"""Each building block respects its group action (float64), against a control."""

from __future__ import annotations

import pytest
import torch

from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import ModelConfig
from scalegmn.nn import (
    EdgeUpdate,
    PositionalEncoding,
    ReScaleEq,
    RowGroups,
    ScaleEq,
    ScaleInv,
    Tau,
    from_weight_batch,
    inverse_edge,
)
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.network import NetworkSpec, cnn_zoo_spec, dws_siren_spec
from scalegmn.weightspace.symmetry import random_scales, scale_hidden
from scalegmn.weightspace.testing import assert_symmetric, random_network

R, K = 40, 6


pytestmark = pytest.mark.usefixtures("float64_default")


def rel(a, b):
    return float(((a - b).norm() / a.norm()).detach())


def row_scales(symmetry: str, n: int, odd=None):
    g = torch.Generator().manual_seed(7)
    u = torch.rand(n, 1, generator=g)
    sign = torch.where(u < 0.5, -1.0, 1.0)
    pos = torch.exp(torch.log(torch.tensor(0.25)) + u * torch.log(torch.tensor(16.0)))
    if symmetry == "sign":
        return sign
    if symmetry == "scale":
        return pos
    return torch.where(odd.unsqueeze(-1), sign, pos)


def bad_scales(symmetry: str, n: int, odd=None):
    """CONTROL: the other group (positive non-unit scales for sign, negative for scale)."""
    q = row_scales("scale", n)
    if symmetry == "sign":
        return q + 1.0
    if symmetry == "scale":
        return -q
    return torch.where(odd.unsqueeze(-1), q + 1.0, -q)


CASES = [("sign", "abs"), ("sign", "sym"), ("scale", "abs"), ("hetero", "abs"), ("hetero", "sym")]


@pytest.mark.parametrize(("symmetry", "tau"), CASES)
def test_tau_and_scale_inv_are_invariant(symmetry, tau):
    odd = torch.arange(R) % 2 == 0
    x = torch.randn(R, K)
    t = Tau(K, symmetry, tau, d_hid=8)
    inv = ScaleInv(K, 3, 5, t, d_hid=8, layer_norm=True, dropout=0.0)
    a = torch.randn(R, 3)
    q, bad = row_scales(symmetry, R, odd), bad_scales(symmetry, R, odd)
    for f in (lambda z: t(z, odd), lambda z: inv(z, a, odd)):
        ref = f(x)
        assert_symmetric(rel(ref, f(q * x)), rel(ref, f(bad * x)), what=f"{symmetry}/{tau}")


@pytest.mark.parametrize(("symmetry", "tau"), CASES)
@pytest.mark.parametrize("mlp_on_io", [False, True])
def test_scale_eq_is_equivariant_on_hidden_rows(symmetry, tau, mlp_on_io):
    odd = torch.arange(R) % 3 == 0
    role = torch.tensor([0, 1, 1, 2] * (R // 4))
    groups = RowGroups.from_roles(role)
    block = ScaleEq(K, 0, 5, Tau(K, symmetry, tau, d_hid=8), d_hid=8, n_io_mlps=2,
                    mlp_on_io=mlp_on_io)
    x = torch.randn(R, K)
    hidden = (role == 1).unsqueeze(-1)
    # Input/output rows carry q = 1.
    q = torch.where(hidden, row_scales(symmetry, R, odd), 1.0)
    bad = torch.where(hidden, bad_scales(symmetry, R, odd), 1.0)
    ref = block(x, None, odd, groups)
    sym = rel(q * ref, block(q * x, None, odd, groups))
    ctrl = rel(q * ref, block(bad * x, None, odd, groups))
    assert_symmetric(sym, ctrl, what=f"ScaleEq {symmetry}/{tau}")


def test_rescale_eq_and_inverse_edge_transform_as_required():
    n_nodes, n_edges = 10, 30
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, n_nodes, (n_edges,), generator=g)
    dst = torch.randint(0, n_nodes, (n_edges,), generator=g)
    qn = row_scales("scale", n_nodes)
    h, e = torch.randn(n_nodes, K), torch.randn(n_edges, K)
    e_q = e * qn[dst] / qn[src]
    block = ReScaleEq(K, K, 5)
    with_src = lambda ee, x: ee * x[src]  # noqa: E731
    ref = block(e, h, with_src)
    sym = rel(qn[dst] * ref, block(e_q, qn * h, with_src))
    ctrl = rel(qn[dst] * ref, block(e_q, h, with_src))  # CONTROL: h not scaled
    assert_symmetric(sym, ctrl, what="ReScaleEq")
    # inverse_edge turns the law q_dst / q_src into q_src / q_dst; a zero edge stays 0.
    e[0] = 0.0
    inv = inverse_edge(e)
    assert torch.all(inv[0] == 0)
    torch.testing.assert_close(inverse_edge(e * qn[dst] / qn[src]), inv * qn[src] / qn[dst])


@pytest.mark.parametrize("symmetry", ["sign", "scale", "hetero"])
def test_edge_update_scales_like_the_edge(symmetry):
    n_nodes, n_edges = 12, 40
    g = torch.Generator().manual_seed(1)
    src = torch.randint(0, n_nodes, (n_edges,), generator=g)
    dst = torch.randint(0, n_nodes, (n_edges,), generator=g)
    odd_nodes = torch.arange(n_nodes) % 2 == 0
    # One graph per parity keeps each edge's group well defined for hetero.
    dst = (dst // 2) * 2 + (src % 2)
    qn = row_scales(symmetry, n_nodes, odd_nodes)
    bad = bad_scales(symmetry, n_nodes, odd_nodes)
    block = EdgeUpdate(K, K, Tau(K, symmetry, "sym", d_hid=8), d_hid=8, layer_norm=True, dropout=0.0)
    pair = lambda a, b: a[src] + b[dst]  # noqa: E731
    h, e = torch.randn(n_nodes, K), torch.randn(n_edges, K)
    law = qn[dst] / qn[src]
    ref = block(h, e, pair, odd_nodes)
    sym = rel(law * ref, block(qn * h, law * e, pair, odd_nodes))
    ctrl = rel(law * ref, block(bad * h, law * e, pair, odd_nodes))
    assert_symmetric(sym, ctrl, what=f"EdgeUpdate {symmetry}")


def test_multiplicative_positional_encoding_commutes_with_scaling():
    pe = PositionalEncoding(4, K, multiplicative=True)
    types = torch.tensor([0, 1, 2, 3] * 5)
    h = torch.randn(20, K)
    q = row_scales("scale", 20)
    torch.testing.assert_close(pe(q * h, types), q * pe(h, types))
    additive = PositionalEncoding(4, K, multiplicative=False)
    assert rel(q * additive(h, types), additive(q * h, types)) > 1e-3  # CONTROL


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize(("spec", "symmetry"), [
    (dws_siren_spec(), "sign"),
    (cnn_zoo_spec("relu"), "scale"),
    (NetworkSpec((3, 7, 5, 2), ("relu", "relu", "identity")), "scale"),
])
def test_one_layer_is_equivariant(spec, symmetry, bidirectional):
    """h (hidden rows) scales by q_i, e on j -> i by q_i / q_j after one full layer."""
    config = ModelConfig(symmetry=symmetry, tau="sym", d_hid=8, n_layers=2, mlp_on_io=True,
                         num_mlps=3, direction="bidirectional" if bidirectional else "forward")
    model = build_model(config, spec, task="classification", n_outputs=2).double().eval()
    net = random_network(spec, (2,))
    q = random_scales(spec, torch.Generator().manual_seed(2),
                      "sign" if symmetry == "sign" else "positive", (2,))
    # q per node row of the flat graph: a network whose biases are q (hidden) and 1 (outputs).
    q_net = scale_hidden(net.replace(biases=tuple(torch.ones_like(b) for b in net.biases)), q)
    qg = from_weight_batch(WeightBatch(q_net), 1.0).node_value.unsqueeze(-1)

    def layer_out(n):
        g = from_weight_batch(WeightBatch(n), config.input_node_value)
        h, e, pe = model.embed(g)
        return model.layers[0](g, h, e, e if bidirectional else None, pe, None, None), g

    (h0, e0, _), g = layer_out(net)
    (h1, e1, _), _ = layer_out(scale_hidden(net, q))
    (hc, ec, _), _ = layer_out(scale_hidden(net, [-x if symmetry == "scale" else 2 * x for x in q]))
    hidden = (g.node_role == 1).unsqueeze(-1)
    expect_h = torch.where(hidden, qg * h0, h0)
    law = qg[g.dst] / qg[g.src]
    assert_symmetric(rel(expect_h, h1), rel(expect_h, hc), what="layer nodes")
    assert_symmetric(rel(law * e0, e1), rel(law * e0, ec), what="layer edges")


def test_inverse_edge_treats_numerically_zero_edges_as_zero():
    """A CNN zoo run whose weights decayed to denormals (‖e‖² underflows or nearly) must give a
    zero backward edge, not an overflow that turns the LayerNorms after it into NaN (table 2's
    ScaleGMN-B crashed on such a stand-in run)."""
    for dtype, tiny_norm in ((torch.float32, 1e-21), (torch.float64, 1e-160)):
        e = torch.tensor([[3.0, 4.0], [tiny_norm, -tiny_norm], [0.0, 0.0]], dtype=dtype)
        inv = inverse_edge(e)
        assert torch.isfinite(inv).all()
        assert torch.all(inv[1:] == 0)
        torch.testing.assert_close(inv[0], torch.tensor([3.0, 4.0], dtype=dtype) / 25.0)
        # CONTROL: an edge of ordinary size is inverted, not zeroed
        small = torch.tensor([[1e-4, 2e-4]], dtype=dtype)
        torch.testing.assert_close(inverse_edge(small), small / 5e-8)
        # a float32 LayerNorm after the map stays finite
        out = torch.nn.functional.layer_norm(inverse_edge(e.float()) * 1e3, (2,))
        assert torch.isfinite(out).all()
