"""Batched training of zoo CNNs: forward convention, checkpoints, configs, metrics."""

import pytest
import torch

from scalegmn.functional import cnn_forward
from scalegmn.network import cnn_zoo_spec
from scalegmn.standins.cnn_train import (
    CHECKPOINT_EPOCHS,
    RunConfigs,
    _train_forward,
    checkpoint_steps,
    evaluate,
    init_cnns,
    sample_run_configs,
    train_cnn_zoo,
)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_train_forward_without_dropout_is_the_zoo_forward(activation):
    spec = cnn_zoo_spec(activation)
    gen = torch.Generator().manual_seed(0)
    net = init_cnns(spec, torch.full((3,), 0.2, dtype=torch.float64), gen).to(torch.float64)
    for b in net.biases:
        b.normal_(generator=gen)
    images = torch.rand(3, 5, 1, 32, 32, generator=gen, dtype=torch.float64) * 2 - 1
    keep = torch.ones(3, dtype=torch.float64)
    got = _train_forward(spec, list(net.weights), list(net.biases), images, keep, gen)
    expected = cnn_forward(spec, net.weights, net.biases, images)
    torch.testing.assert_close(got, expected)
    # control: with dropout the output changes
    dropped = _train_forward(spec, list(net.weights), list(net.biases), images, keep * 0.5, gen)
    assert not torch.allclose(dropped, expected)


def test_evaluate_shared_and_per_network_images_agree():
    spec = cnn_zoo_spec("relu")
    gen = torch.Generator().manual_seed(1)
    net = init_cnns(spec, torch.full((2,), 0.3, dtype=torch.float64), gen)
    x = torch.rand(40, 1, 32, 32, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (40,), generator=gen)
    acc, loss = evaluate(net, x, y, chunk=7)
    acc2, loss2 = evaluate(net, x.expand(2, -1, -1, -1, -1), y.expand(2, -1), chunk=40)
    torch.testing.assert_close(acc, acc2)
    torch.testing.assert_close(loss, loss2)
    logits = cnn_forward(spec, tuple(w[0] for w in net.weights), tuple(b[0] for b in net.biases), x)
    assert float(acc[0]) == pytest.approx(float((logits.argmax(-1) == y).float().mean()))


def test_checkpoint_steps_map_the_zoo_epochs():
    steps = checkpoint_steps(172)
    assert steps == [round(e * 2) for e in CHECKPOINT_EPOCHS]
    short = checkpoint_steps(8)
    assert (
        short[0] == 0
        and short[-1] == 8
        and all(b > a for a, b in zip(short, short[1:], strict=False))
    )
    with pytest.raises(ValueError):
        checkpoint_steps(3)


def test_configs_are_balanced_and_in_range():
    cfg = sample_run_configs(40, torch.Generator().manual_seed(0))
    assert cfg.activation.count("relu") == 20 and cfg.activation.count("tanh") == 20
    assert set(cfg.train_fraction.tolist()) <= {0.1, 0.25, 0.5, 1.0}
    assert (cfg.learning_rate > 0).all() and (cfg.dropout < 1).all()


def test_training_learns():
    gen = torch.Generator().manual_seed(0)
    # an easy task: the class is the image's mean brightness band
    labels = torch.randint(0, 10, (400,), generator=gen)
    x = (labels.float() / 4.5 - 1.0).view(-1, 1, 1, 1).expand(-1, 1, 32, 32).clone()
    x += 0.02 * torch.randn(x.shape, generator=gen)
    cfg = sample_run_configs(4, gen)
    ck = train_cnn_zoo(
        cfg, x[:300], labels[:300], x[300:], labels[300:], train_steps=40, gen=gen, chunk=2
    )
    assert ck.weights[0].shape == (4, 9, 16, 1, 3, 3)
    assert (
        ck.test_accuracy.shape == (4, 9)
        and ((ck.test_accuracy >= 0) & (ck.test_accuracy <= 1)).all()
    )
    assert (ck.test_accuracy[:, -1] > ck.test_accuracy[:, 0]).any()
    assert not torch.equal(ck.weights[1][:, 0], ck.weights[1][:, -1])  # weights moved
    assert all(torch.isfinite(w).all() for w in ck.weights)


def test_runs_trained_together_do_not_interact():
    """Run 0 ends the same whichever run shares its batch (same random stream, same shapes)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(60, 1, 32, 32, generator=gen) * 2 - 1
    y = torch.randint(0, 10, (60,), generator=gen)
    base = sample_run_configs(2, torch.Generator().manual_seed(0))
    same_act = ("relu", "relu")
    first = RunConfigs(
        same_act, base.learning_rate, base.init_std, base.l2reg, base.dropout, base.train_fraction
    )
    other = RunConfigs(
        same_act,
        base.learning_rate * torch.tensor([1.0, 3.0], dtype=torch.float64),
        base.init_std,
        base.l2reg * torch.tensor([1.0, 100.0], dtype=torch.float64),
        torch.tensor([float(base.dropout[0]), 0.25], dtype=torch.float64),
        base.train_fraction,
    )
    a = train_cnn_zoo(
        first, x, y, x[:20], y[:20], train_steps=12, gen=torch.Generator().manual_seed(1)
    )
    b = train_cnn_zoo(
        other, x, y, x[:20], y[:20], train_steps=12, gen=torch.Generator().manual_seed(1)
    )
    for wa, wb in zip(a.weights, b.weights, strict=True):
        torch.testing.assert_close(wa[0], wb[0], rtol=1e-5, atol=1e-6)
    # control: the changed run itself trained differently
    assert not torch.allclose(a.weights[1][1, -1], b.weights[1][1, -1])
