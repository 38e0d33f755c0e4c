"""Siblings: networks of a zoo that come from one training run or were fitted to one image.

They are read from each network's source id (the file it came from), by the layouts of the real
archives (docs/datasets.md), which the stand-ins keep:

- CNN Wild Park: ``.../<trial>/checkpoint_<k>/checkpoint.pt``; the checkpoints of one trial
  folder are one run.
- Small CNN Zoo ingested with every checkpoint (``checkpoints: all``):
  ``.../weights.npy#<row>?run=<modeldir>&step=<s>``; one ``modeldir`` is one run.
- CIFAR-10 INRs: ``.../randinit_smaller[_aug<k>]_<n>s/net<i>.pth``; ``net<i>`` is image ``i``
  in the base zoo and in every augmented copy.
- Every other source (MNIST and F-MNIST INRs: one INR per image; the Small CNN Zoo's final
  checkpoints; a user's zoo) is a group of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WILD_PARK = re.compile(r"(?P<run>.*)/checkpoint_\d+/checkpoint\.pt$")
_CIFAR_INR = re.compile(r"/randinit_smaller(?:_aug\d+)?_\d+s/(?P<image>net\d+)\.pth$")
_CNN_ZOO = re.compile(r"#\d+\?run=(?P<run>.+)&step=\d+$")


def sibling_key(source: str) -> str:
    """The run or image ``source`` belongs to; the source itself when it has no siblings."""
    s = source.replace("\\", "/")
    if m := _WILD_PARK.match(s):
        return "run:" + m["run"]
    if m := _CNN_ZOO.search(s):
        return "run:" + m["run"]
    if m := _CIFAR_INR.search(s):
        return "image:" + m["image"]
    return "self:" + s


def sibling_groups(sources: Sequence[str]) -> np.ndarray:
    """``(N,)`` int64 group ids, numbered in order of first appearance; equal ids are siblings."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(sibling_key(str(s)), len(ids)) for s in sources], dtype=np.int64)
