"""ScaleGMN learns the class of an INR that the MLP and the permutation-only GMN do not: on a
stand-in MNIST zoo built as the shipped default builds it (every INR fitted from its own random
init with the shipped recipe, inr_zoos.mnist_inr_recipe; two digit classes and fewer fitting steps, for speed),
ScaleGMN with the quick settings of config.yaml learns the classes in a few hundred steps.

This guards the table-1 ranking (ScaleGMN above MLP and GMN), and on the same zoo the table-3
ranking (ScaleGMN's edited INRs closer to the dilated digits than the MLP's and than the unedited
INRs), the models, per-layer input scaling and the training loop.
"""

from __future__ import annotations

import os

import pytest
import torch

from scalegmn.data.split_protocol import MemorySplit
from scalegmn.data.standins import images as img
from scalegmn.data.standins.inr_zoos import fit_inr_zoo, mnist_inr_recipe
from scalegmn.data.standins.siren_fit import init_dws
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import OptimConfig, get_preset
from scalegmn.train.editing import NoEdit
from scalegmn.train.loop import evaluate, fit
from scalegmn.weightspace.network import dws_siren_spec

pytestmark = pytest.mark.slow

QUICK_MODEL = {"n_layers": 3, "d_hid": 16, "dropout": 0.0, "input_scaling": "rms"}


N_TRAIN, N_TEST, CLASSES = 300, 90, 2  # digits 0 and 1: a quick, unambiguous signal
FIT_STEPS = 300
# The thresholds below were measured over seeds 0-2 (zoo, model and loop), each under
# ATEN_CPU_CAPABILITY=default, avx2 and avx512; set this variable to rerun one seed.
SEED = int(os.environ.get("SCALEGMN_LEARNING_SEED", "0"))


@pytest.fixture(scope="module")
def digit_zoo():
    gen = torch.Generator().manual_seed(SEED)
    train_pool, test_pool = img.split_digit_pool(200, gen)

    def digits(n: int, pool: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = img.digit_images(n * 10 // CLASSES + 50, gen, pool=pool)
        keep = labels < CLASSES
        return images[keep][:n], labels[keep][:n]

    parts = [digits(N_TRAIN, train_pool), digits(N_TEST, test_pool)]
    images = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    zoo, _ = fit_inr_zoo(init_dws, dws_siren_spec(), img.to_unit(images).unsqueeze(1),
                          draws=0, recipe=mnist_inr_recipe(FIT_STEPS), peak=1.0, gen=gen,
                          label="test")

    def split(rows: slice) -> MemorySplit:
        net = zoo.replace(weights=tuple(w[rows] for w in zoo.weights),
                          biases=tuple(b[rows] for b in zoo.biases))
        return MemorySplit(net, labels[rows], n_classes=CLASSES)

    n_val = N_TRAIN // 8
    return {"train": split(slice(0, N_TRAIN - n_val)), "val": split(slice(N_TRAIN - n_val, N_TRAIN)),
            "test": split(slice(N_TRAIN, N_TRAIN + N_TEST))}


LOOP = OptimConfig(batch_size=32, lr=3e-3, weight_decay=0.0, epochs=None, max_steps=300,
                   eval_every_steps=50, warmup_steps=30)


def _selected_test(task: str, preset: str, kind: str, splits) -> dict[str, float]:
    torch.manual_seed(SEED)
    config = get_preset(preset).model.override({**QUICK_MODEL, "kind": kind})
    n_outputs = CLASSES if task == "classification" else 0
    model = build_model(config, dws_siren_spec(), task=task, n_outputs=n_outputs)
    model.input_scale.calibrate(splits["train"].net)
    return fit(model, LOOP, task, splits, seed=SEED).selected["test"]


def _test_accuracy(kind: str, splits) -> float:
    return _selected_test("classification", "mnist_cls/scalegmn", kind, splits)["accuracy"]


def test_scalegmn_learns_the_standin_classes_and_the_baselines_do_not(digit_zoo):
    scalegmn = _test_accuracy("scalegmn", digit_zoo)
    mlp = _test_accuracy("mlp", digit_zoo)
    gmn = _test_accuracy("gmn", digit_zoo)
    print(f"learning: seed {SEED} {torch.backends.cpu.get_cpu_capability()} "
          f"scalegmn {scalegmn:.4f} mlp {mlp:.4f} gmn {gmn:.4f}")
    # chance is 0.5. Measured on the anti-aliased stand-in digits (mnist_inr_recipe) over seeds
    # 0-2 x capabilities default/avx2/avx512: ScaleGMN 0.867-0.974, MLP 0.461-0.533, GMN
    # 0.311-0.513, ScaleGMN minus the better baseline 0.333-0.447; the thresholds keep a margin of
    # about 0.07-0.13 below.
    assert scalegmn >= 0.80, f"ScaleGMN test accuracy {scalegmn:.3f}: it did not learn the classes"
    for name, baseline in (("MLP", mlp), ("GMN", gmn)):
        assert scalegmn >= baseline + 0.20, f"ScaleGMN {scalegmn:.3f} does not beat the {name} {baseline:.3f}"


def test_scalegmn_edits_closer_to_the_dilated_digits_than_the_mlp_and_no_edit(digit_zoo):
    scalegmn = _selected_test("editing", "mnist_editing/scalegmn", "scalegmn", digit_zoo)["mse"]
    mlp = _selected_test("editing", "mnist_editing/scalegmn", "mlp", digit_zoo)["mse"]
    unedited = evaluate(NoEdit(), digit_zoo["test"], "editing", 32, torch.device("cpu"))["mse"]
    print(f"editing: seed {SEED} {torch.backends.cpu.get_cpu_capability()} "
          f"scalegmn {scalegmn:.5f} mlp {mlp:.5f} unedited {unedited:.5f}")
    # Measured on the anti-aliased stand-in digits over seeds 1-2 x default/avx2/avx512 and seed 0 x
    # default/avx2 (seed 0 natively passes; its values were not kept): ScaleGMN 0.0037-0.0043, MLP
    # 0.0189-0.0222, unedited 0.0198-0.0218; ScaleGMN's error is at most 0.20 of the unedited one
    # and 0.23 of the MLP's. The thresholds keep more than half of each.
    assert scalegmn <= 0.5 * unedited, f"ScaleGMN MSE {scalegmn:.5f}: hardly below unedited {unedited:.5f}"
    assert scalegmn <= 0.5 * mlp, f"ScaleGMN MSE {scalegmn:.5f} does not beat the MLP {mlp:.5f}"
