"""Batched training of zoo CNNs: forward convention, checkpoints, configs, metrics."""

import json
import math
from collections import Counter

import pytest
import torch

from scalegmn.data.standins.cnn_reference import REAL_HYPERPARAMETERS, reference_comparison
from scalegmn.data.standins.cnn_train import (
    CHECKPOINT_EPOCHS,
    OPTIMIZERS,
    W_INITS,
    RunConfigs,
    _train_forward,
    checkpoint_steps,
    evaluate,
    init_cnns,
    optimizer_step,
    sample_run_configs,
    train_cnn_zoo,
)
from scalegmn.weightspace.functional import cnn_forward
from scalegmn.weightspace.network import cnn_zoo_spec


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


def test_configs_follow_the_real_zoo_distributions():
    """Every continuous hyperparameter is stratified over the real zoo's distribution: mapped
    through that distribution's CDF, the n draws fall one into each of n equal bins."""
    n = 60
    cfg = sample_run_configs(n, torch.Generator().manual_seed(3))
    columns = cfg.as_columns()
    for name, ref in REAL_HYPERPARAMETERS.items():
        values = columns[name]
        if "choices" in ref:
            counts = Counter(values.tolist() if isinstance(values, torch.Tensor) else values)
            drawn = W_INITS if name == "w_init" else ref["choices"]  # no Constant init
            assert set(counts) == set(drawn), name
            assert max(counts.values()) - min(counts.values()) <= 1, name  # balanced
            continue
        lo, hi = ref["low"], ref["high"]
        assert ((values >= lo) & (values <= hi)).all(), name
        if ref["distribution"] == "log-uniform":
            u = (values.log() - math.log(lo)) / (math.log(hi) - math.log(lo))
        else:
            u = (values - lo) / (hi - lo)
        assert sorted((u * n).floor().long().tolist()) == list(range(n)), name
    # the columns are shuffled independently: no two continuous ones share their order
    orders = [torch.argsort(columns[k]) for k in ("learning_rate", "init_std", "l2reg", "dropout")]
    assert all(not torch.equal(a, b) for i, a in enumerate(orders) for b in orders[i + 1 :])


def test_initializers_follow_keras():
    spec = cnn_zoo_spec("relu")
    n = 200
    std = torch.full((n,), 0.03, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for w_init in W_INITS:
        net = init_cnns(spec, std, gen, (w_init,) * n)
        assert all((b == 0).all() for b in net.biases)
        for w in net.weights:
            receptive = w[0, 0, 0].numel() if w.dim() == 5 else 1  # kh * kw
            fan_in, fan_out = w.shape[2] * receptive, w.shape[1] * receptive
            if w_init == "RandomNormal":
                assert float(w.std()) == pytest.approx(0.03, rel=0.03)
            elif w_init == "TruncatedNormal":
                assert float(w.abs().max()) <= 2 * 0.03 + 1e-7
                assert float(w.std()) == pytest.approx(0.03 * 0.8796, rel=0.03)
            elif w_init == "GlorotNormal":
                assert float(w.std()) == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.03)
            elif w_init == "GlorotUniform":
                limit = math.sqrt(6 / (fan_in + fan_out))
                assert float(w.abs().max()) <= limit
                assert float(w.std()) == pytest.approx(limit / math.sqrt(3), rel=0.03)
            else:  # Orthogonal: the (out, fan_in) matrix has orthonormal rows or columns
                mat = w.flatten(2)
                gram = (
                    mat @ mat.transpose(1, 2) if fan_in >= w.shape[1] else mat.transpose(1, 2) @ mat
                )
                torch.testing.assert_close(
                    gram, torch.eye(gram.shape[-1]).expand_as(gram), atol=1e-5, rtol=0
                )


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_optimizer_step_matches_torch(optimizer):
    """Batched per-run updates equal torch's optimizers with the Keras defaults."""
    gen = torch.Generator().manual_seed(0)
    lr = torch.tensor([0.01, 0.003], dtype=torch.float64)
    params = [torch.randn(2, 5, 3, generator=gen), torch.randn(2, 4, generator=gen)]
    reference = [p.clone().requires_grad_() for p in params]
    make = {
        "adam": lambda ps, r: torch.optim.Adam(ps, lr=r, betas=(0.9, 0.999), eps=1e-7),
        "rmsprop": lambda ps, r: torch.optim.RMSprop(ps, lr=r, alpha=0.9, eps=1e-7),
        "sgd": lambda ps, r: torch.optim.SGD(ps, lr=r),
    }[optimizer]
    # one torch optimizer per run, over that run's slices
    views = [[p[k].detach().clone().requires_grad_() for p in reference] for k in range(2)]
    opts = [make(views[k], float(lr[k])) for k in range(2)]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for step in range(1, 6):
        grads = tuple(torch.randn(p.shape, generator=gen) for p in params)
        optimizer_step(params, grads, m, v, step, lr.float(), (optimizer, optimizer))
        for k in range(2):
            for t, g in zip(views[k], grads, strict=True):
                t.grad = g[k].clone()
            opts[k].step()
    for k in range(2):
        for p, t in zip(params, views[k], strict=True):
            torch.testing.assert_close(p[k], t.detach(), rtol=1e-5, atol=1e-6)


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
        same_act,
        base.learning_rate,
        base.init_std,
        base.l2reg,
        base.dropout,
        base.train_fraction,
        base.optimizer,
        base.w_init,
    )
    other = RunConfigs(
        same_act,
        base.learning_rate * torch.tensor([1.0, 3.0], dtype=torch.float64),
        base.init_std,
        base.l2reg * torch.tensor([1.0, 100.0], dtype=torch.float64),
        torch.tensor([float(base.dropout[0]), 0.25], dtype=torch.float64),
        base.train_fraction,
        (base.optimizer[0], "sgd" if base.optimizer[1] != "sgd" else "rmsprop"),
        (base.w_init[0], "Orthogonal" if base.w_init[1] != "Orthogonal" else "GlorotUniform"),
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


def test_reference_comparison_puts_the_standin_next_to_the_real_zoo():
    n = 200
    cfg = sample_run_configs(n, torch.Generator().manual_seed(0))
    acc = torch.linspace(0.1, 0.5, n)
    report = reference_comparison("svhn_cropped", cfg.as_columns(), acc, notes=("short",))
    table = report["hyperparameters"]
    assert set(table) == set(REAL_HYPERPARAMETERS)
    # exact quantiles of the real distributions: log-uniform median = geometric mean
    assert table["learning_rate"]["real"]["quantiles"]["median"] == pytest.approx(5e-3, rel=1e-3)
    assert table["dropout"]["real"]["quantiles"]["q75"] == pytest.approx(0.525)
    for name in ("learning_rate", "init_std", "l2reg", "dropout"):
        mine, real = table[name]["standin"], table[name]["real"]["quantiles"]
        ref = REAL_HYPERPARAMETERS[name]
        assert mine["min"] >= ref["low"] and mine["max"] <= ref["high"]
        # stratified draws: every quantile within one bin (1/n of the CDF) of the real one
        for q in ("q25", "median", "q75"):
            if ref["distribution"] == "log-uniform":
                width = math.log(ref["high"] / ref["low"])
                assert abs(math.log(mine[q] / real[q])) <= width / n + 1e-3, (name, q)
            else:
                assert abs(mine[q] - real[q]) <= (ref["high"] - ref["low"]) / n + 1e-3, (name, q)
    assert table["optimizer"]["standin_frequencies"] == pytest.approx(
        {"adam": 1 / 3, "rmsprop": 1 / 3, "sgd": 1 / 3}, abs=0.01
    )
    assert "Constant" not in table["w_init"]["standin_frequencies"]
    assert report["final_test_accuracy"] == {
        "standin": {"min": 0.1, "q25": 0.2, "median": 0.3, "q75": 0.4, "max": 0.5},
        "standin_share_above_0.2": 0.75,
        "real": "unknown",
    }
    assert report["differences"] == ["short"]
    json.dumps(report)  # JSON-ready
