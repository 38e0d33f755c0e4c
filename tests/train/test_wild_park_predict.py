"""``scalegmn predict``'s input side on a CNN Wild Park folder: networks of many architectures,
read as they are (a MixedSplit), rows and sources kept aligned."""

from __future__ import annotations

import torch

from scalegmn.data.formats import wild_park
from scalegmn.data.split_protocol import MixedSplit
from scalegmn.data.standins.zoos import build_standin
from scalegmn.train.predict import read_input


def test_read_input_of_a_wild_park_folder_and_file(tmp_path):
    root = tmp_path / "cnn_wild_park"
    build_standin("cnn_wild_park", root, size="tiny", seed=1)
    data = read_input(root, {})  # no single spec: the model's checkpoint need not name one
    files = wild_park.list_files(root)
    assert isinstance(data, MixedSplit) and data.size == len(files) and len(data.specs) > 1
    batch = data.get(torch.arange(data.size))
    for i, y in zip(batch.index.tolist(), batch.y.tolist(), strict=True):
        assert wild_park.read_network(data.sources[i]).target == y
    one = read_input(files[0], {})
    assert one.size == 1 and one.sources == [str(files[0])]
