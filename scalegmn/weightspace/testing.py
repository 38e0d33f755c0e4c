"""Helpers for property tests of symmetry transforms and models (float64, with controls).

A symmetry test compares the change a group element causes with the change a *control*
perturbation (not a symmetry) causes: at initialisation the multiplicative ScaleGMN blocks are
nearly input-independent, so an absolute tolerance proves nothing (docs/model.md §2.11).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from scalegmn.weightspace.network import Network, NetworkSpec


def random_network(
    spec: NetworkSpec,
    batch: Sequence[int] = (3,),
    *,
    seed: int = 0,
    scale: float = 0.5,
    dtype: torch.dtype = torch.float64,
) -> Network:
    """A batch of networks with i.i.d. normal weights and biases times ``scale``."""
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(*batch, *spec.weight_shape(i), generator=g, dtype=dtype) * scale
               for i in range(spec.n_layers)]
    biases = [torch.randn(*batch, *spec.bias_shape(i), generator=g, dtype=dtype) * scale
              for i in range(spec.n_layers)]
    return Network(spec, weights, biases)


def jitter(net: Network, *, seed: int = 1, rel: float = 1e-2) -> Network:
    """CONTROL perturbation: every parameter times ``1 + rel * N(0, 1)`` (not a symmetry)."""
    g = torch.Generator().manual_seed(seed)

    def noisy(t: torch.Tensor) -> torch.Tensor:
        return t * (1 + rel * torch.randn(t.shape, generator=g, dtype=t.dtype))

    return net.replace(weights=tuple(noisy(w) for w in net.weights),
                       biases=tuple(noisy(b) for b in net.biases))


def flatten_output(out) -> torch.Tensor:
    """A model output (tensor, or editing ``(weights, biases)``) as one flat tensor."""
    if isinstance(out, tuple):
        return torch.cat([t.reshape(-1) for part in out for t in part])
    return out.reshape(-1)


def relative_change(a, b) -> float:
    """``|a - b| / |a|`` of two model outputs (see :func:`flatten_output`)."""
    a, b = flatten_output(a), flatten_output(b)
    return float((a - b).norm() / a.norm().clamp_min(1e-300))


def assert_symmetric(symmetric: float, control: float, *, ratio: float = 1e-4,
                     floor: float = 1e-12, what: str = "") -> None:
    """The symmetric change is negligible next to the control's, and the control is visible."""
    assert control > floor, f"{what}: the control perturbation changed nothing ({control:.2e})"
    assert symmetric <= ratio * control, (
        f"{what}: a symmetry changed the output by {symmetric:.2e}, the control by {control:.2e}"
    )


def check_symmetry(
    run: Callable[[Network], object],
    net: Network,
    transform: Callable[[Network], Network],
    *,
    expected: Callable[[object], object] | None = None,
    control: Callable[[Network], Network] = jitter,
) -> tuple[float, float]:
    """``(symmetric change, control change)`` of ``run`` under ``transform`` vs ``control``.

    ``expected`` maps the reference output to what the transformed input must give (identity
    for invariance; the same group action for equivariance).
    """
    with torch.no_grad():
        ref = run(net)
        target = ref if expected is None else expected(ref)
        sym = relative_change(target, run(transform(net)))
        ctrl = relative_change(target, run(control(net)))
    return sym, ctrl
