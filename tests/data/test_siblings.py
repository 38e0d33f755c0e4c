"""Siblings read from source ids: checkpoints of one Wild Park trial, INRs of one CIFAR-10 image
in the base zoo and its augmented copies; every other source alone."""

from __future__ import annotations

import numpy as np

from scalegmn.data.formats import wild_park
from scalegmn.data.siblings import sibling_groups, sibling_key
from scalegmn.data.standins.zoos import build_standin


def test_wild_park_checkpoints_of_one_trial_are_siblings(tmp_path):
    root = tmp_path / "cnn_wild_park"
    build_standin("cnn_wild_park", root, size="tiny", seed=0)
    files = [str(p) for p in wild_park.list_files(root)]
    groups = sibling_groups(files)
    trials = [p.split("/")[-3] for p in files]
    # the groups are exactly the trial folders (tiny: 6 runs x 3 checkpoints)
    assert len(set(groups.tolist())) == len(set(trials)) == 6
    for a in range(len(files)):
        for b in range(len(files)):
            assert (groups[a] == groups[b]) == (trials[a] == trials[b])


def test_cifar_inrs_of_one_image_are_siblings_across_copies():
    base = "data/siren_cifar_wts"
    sources = [f"{base}/randinit_smaller_3s/net7.pth", f"{base}/randinit_smaller_aug0_3s/net7.pth",
               f"{base}/randinit_smaller_aug12_3s/net7.pth", f"{base}/randinit_smaller_3s/net70.pth",
               f"{base}/randinit_smaller_aug0_5s/net8.pth"]
    assert sibling_groups(sources).tolist() == [0, 0, 0, 1, 2]


def test_other_sources_are_alone():
    sources = ["mnist-inrs/mnist_png_training_2_23/checkpoints/model_final.pth",
               "mnist-inrs/mnist_png_training_2_24/checkpoints/model_final.pth",
               "small-zoo/weights.npy#12", "small-zoo/weights.npy#13", "net0", "net1"]
    groups = sibling_groups(sources)
    assert len(np.unique(groups)) == len(sources)
    # a Wild Park-like path needs the checkpoint_<k>/checkpoint.pt layout to be a run
    assert sibling_key("runs/trial_1/checkpoint_000002/checkpoint.pt") == sibling_key(
        "runs/trial_1/checkpoint_000007/checkpoint.pt")
    assert sibling_key("runs/trial_1/checkpoint_000002/weights.pt") != sibling_key(
        "runs/trial_1/checkpoint_000007/weights.pt")
