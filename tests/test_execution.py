"""ExecutionConfig (scalegmn.execution): defaults, the policy, ranges checked by the schema, and
the precision of the model it builds. The config section and the legacy keys of old checkpoints
are tested with the job (tests/train/test_experiments.py)."""

from __future__ import annotations

import pytest
import torch

from scalegmn.errors import ConfigError
from scalegmn.execution import DEFAULT_EXECUTION, PRECISIONS, ExecutionConfig
from scalegmn.models.catalogue import preset_spec
from scalegmn.models.metanetworks import DTYPES, build_model
from scalegmn.models.presets import get_preset
from scalegmn.weightspace.batch import WeightBatch
from scalegmn.weightspace.testing import random_network


def test_the_default_policy_is_lean_for_every_batch_in_float32():
    assert DEFAULT_EXECUTION == ExecutionConfig()
    assert DEFAULT_EXECUTION.lean and not DEFAULT_EXECUTION.checkpoint
    assert DEFAULT_EXECUTION.use_lean(1e-3)  # auto with lean_min_mb 0: lean for every batch
    assert DEFAULT_EXECUTION.precision == "float32" and DEFAULT_EXECUTION.micro_batch_size is None


def test_every_precision_has_a_torch_dtype():
    # scalegmn.execution itself imports no torch (tests/devtools/test_imports.py)
    assert set(DTYPES) == set(PRECISIONS)


def test_auto_uses_lean_above_lean_min_mb_only():
    policy = ExecutionConfig(lean_min_mb=512.0)
    assert not policy.use_lean(512.0) and policy.use_lean(512.5)
    assert ExecutionConfig(memory="lean", lean_min_mb=512.0).use_lean(1.0)
    assert not ExecutionConfig(memory="plain").use_lean(1e9)
    assert not ExecutionConfig(memory="checkpoint").lean


@pytest.mark.parametrize(("field", "value"), [
    ("precision", "float16"), ("memory", "lean_autograd"), ("lean_min_mb", -1.0),
    ("checkpoint_chunk", 0), ("micro_batch_size", 0)])
def test_out_of_range_values_name_their_key(field, value):
    with pytest.raises(ConfigError, match=f"execution.{field}"):
        ExecutionConfig(**{field: value})
    with pytest.raises(ConfigError, match=f"execution.{field}"):
        ExecutionConfig().override({field: value})


def test_float64_precision_builds_a_float64_model_that_reads_float32_weights():
    preset = get_preset("cifar10/scalegmn_relu")
    config = preset.model.override({"d_hid": 6, "n_layers": 1})
    spec = preset_spec(preset.name)
    model = build_model(config, spec, task=preset.task, n_outputs=1,
                        execution=ExecutionConfig(precision="float64"))
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model.execution.precision == "float64"
    out = model(WeightBatch(random_network(spec, (2,), dtype=torch.float32)))
    assert out.dtype == torch.float64 and out.shape == (2, 1)
