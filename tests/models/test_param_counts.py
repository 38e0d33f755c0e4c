"""Golden parameter counts of the 20 presets (docs/model.md §2.11)."""

from __future__ import annotations

import pytest

from scalegmn.models.catalogue import preset_outputs, preset_spec
from scalegmn.models.metanetworks import build_model, count_parameters
from scalegmn.models.presets import (
    EXPECTED_PARAMS,
    ORIGINAL_PARAMS,
    UNUSED_ORIGINAL_PARAMS,
    get_preset,
    list_presets,
)


def n_params(name: str, **overrides) -> int:
    p = get_preset(name)
    config = p.model.override(overrides)
    return count_parameters(build_model(config, preset_spec(name), task=p.task,
                                        n_outputs=preset_outputs(p)))


@pytest.mark.parametrize("name", [n for n in list_presets() if n in ORIGINAL_PARAMS])
def test_parameter_count(name):
    ours = n_params(name)
    if name in UNUSED_ORIGINAL_PARAMS:
        # The original's full_graph readout builds an MLP (d -> d -> d) it never calls.
        assert ours == ORIGINAL_PARAMS[name] - UNUSED_ORIGINAL_PARAMS[name]
    else:
        assert ours == ORIGINAL_PARAMS[name]  # the original architecture exactly
    assert ours == EXPECTED_PARAMS[name]


def test_equivariant_backward_edges_add_no_parameters():
    name = "cifar10/scalegmn_relu_bidir"
    assert n_params(name, backward_edges="inverse") == n_params(name, backward_edges="shared")


@pytest.mark.parametrize(("name", "count"), [("mnist_cls/scalegmn", 680_458),
                                             ("cifar10/scalegmn_relu", 762_881)])
def test_permutation_gmn_counts_match_the_original(name, count):
    assert n_params(name, kind="gmn") == count
