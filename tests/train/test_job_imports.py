"""A training job of the embedded tables imports only what training needs: every job pays its
imports (2 cores, ~270 jobs in the four tables), so pandas (0.5 s), PyG (2-4 s) and torch._dynamo
stay out of it. (The lean path of the paper presets runs torch.utils.checkpoint, which imports
torch._dynamo: about 1 s in jobs of minutes to hours.)"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pandas", "torch_geometric", "torch._dynamo")

_CODE = """
import sys, torch
import scalegmn.logs, scalegmn.train.experiments, scalegmn.train.job  # the train rule's script
from scalegmn.execution import ExecutionConfig
from scalegmn.models.catalogue import preset_spec
from scalegmn.models.metanetworks import build_model
from scalegmn.models.presets import get_preset
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import random_network
heavy = {heavy!r}
preset = get_preset("mnist_cls/scalegmn")
spec = preset_spec("mnist_cls/scalegmn")
for kind in ("scalegmn", "ng_gnn", "ng_t"):  # NG-GNN's PNA layer once imported PyG
    config = preset.model.override({{"kind": kind, "d_hid": 8, "n_layers": 2}})
    quick = ExecutionConfig().override({{"lean_min_mb": 512}})  # the tables' execution settings
    model = build_model(config, spec, task="classification", n_outputs=10, execution=quick)
    batch = WeightBatch(random_network(spec, (2,), scale=0.1, dtype=torch.float32), y=torch.tensor([0, 1]))
    model(batch).sum().backward()
print(sorted(m for m in heavy if m in sys.modules))
from scalegmn.data.formats import cnn_zoo
cnn_zoo.layout_frame()  # control: reading a CNN zoo table does import pandas
print(sorted(m for m in heavy if m in sys.modules))
"""


def test_a_training_job_imports_no_heavy_package() -> None:
    code = _CODE.format(heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, after = out.strip().splitlines()[-2:]
    assert before == "[]"
    assert after == "['pandas']"
