"""Shared test set-up: deterministic seeds and a single torch thread (CI has 2 cores)."""

import random

import numpy as np
import pytest
import torch

from scalegmn.nn import lean

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for the test (property tests of blocks built in place)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture
def lean_calls(monkeypatch):
    """Counts the forward calls of the lean autograd Functions, per Function."""
    calls = {"_ScaleEqHidden": 0, "_GatedHidden": 0}
    for name in calls:
        fn = getattr(lean, name)
        original = fn.forward

        def counted(ctx, *args, _original=original, _name=name):
            calls[_name] += 1
            return _original(ctx, *args)

        monkeypatch.setattr(fn, "forward", staticmethod(counted))
    return calls


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` run only where CUDA is present (skipped, with the reason, elsewhere)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
