"""The numbers the ScaleGMN paper reports (NeurIPS'24, Tables 1-3), for display beside ours.

Mean and std over the paper's seeds, in the paper's units: accuracy in %, Kendall tau as is,
editing MSE in 1e-2. Rows are the paper's method names; columns are our view names. A row of
ours names its paper row in config.yaml (``paper_row``); e.g. our permutation-only GMN is shown
beside the paper's NG-GNN, the permutation-equivariant graph metanetwork it compares with.
"""

from __future__ import annotations

PaperCell = tuple[float, float]

CLASSIFICATION: dict[str, dict[str, PaperCell]] = {
    "MLP": {"mnist": (17.55, 0.01), "fmnist": (19.91, 0.47), "cifar10": (11.38, 0.34), "cifar10_aug": (16.90, 0.25)},
    "Inr2Vec": {"mnist": (23.69, 0.10), "fmnist": (22.33, 0.41)},
    "DWS": {"mnist": (85.71, 0.57), "fmnist": (67.06, 0.29), "cifar10": (34.45, 0.42), "cifar10_aug": (41.27, 0.026)},
    "NFN-NP": {"mnist": (78.50, 0.23), "fmnist": (68.19, 0.28), "cifar10": (33.41, 0.01), "cifar10_aug": (46.60, 0.07)},
    "NFN-HNP": {"mnist": (79.11, 0.84), "fmnist": (68.94, 0.64), "cifar10": (28.64, 0.07), "cifar10_aug": (44.10, 0.47)},
    "NG-GNN": {"mnist": (91.40, 0.60), "fmnist": (68.00, 0.20), "cifar10": (36.04, 0.44), "cifar10_aug": (45.70, 0.20)},
    "ScaleGMN": {"mnist": (96.57, 0.10), "fmnist": (80.46, 0.32), "cifar10": (36.43, 0.41), "cifar10_aug": (56.62, 0.24)},
    "ScaleGMN-B": {"mnist": (96.59, 0.24), "fmnist": (80.78, 0.16), "cifar10": (38.82, 0.10), "cifar10_aug": (56.95, 0.57)},
}

_GS = ("cifar10_gs_relu", "svhn_gs_relu", "cifar10_gs_tanh", "svhn_gs_tanh", "cifar10_gs_both")


def _gs(*cells: PaperCell) -> dict[str, PaperCell]:
    return dict(zip(_GS, cells, strict=True))


GENERALIZATION: dict[str, dict[str, PaperCell]] = {
    "StatNN": _gs((0.9140, 0.001), (0.8463, 0.004), (0.9140, 0.000), (0.8440, 0.001), (0.915, 0.002)),
    "NFN-NP": _gs((0.9190, 0.010), (0.8586, 0.003), (0.9251, 0.001), (0.8580, 0.004), (0.922, 0.001)),
    "NFN-HNP": _gs((0.9270, 0.001), (0.8636, 0.002), (0.9339, 0.000), (0.8586, 0.004), (0.934, 0.001)),
    "NG-GNN": _gs((0.9010, 0.060), (0.8549, 0.002), (0.9340, 0.001), (0.8620, 0.003), (0.931, 0.002)),
    "ScaleGMN": _gs((0.9276, 0.002), (0.8689, 0.003), (0.9418, 0.005), (0.8736, 0.003), (0.941, 0.006)),
    "ScaleGMN-B": _gs((0.9282, 0.003), (0.8651, 0.001), (0.9425, 0.004), (0.8655, 0.004), (0.941, 0.000)),
}

EDITING: dict[str, dict[str, PaperCell]] = {
    "MLP": {"mnist": (5.35, 0.00)},
    "DWS": {"mnist": (2.58, 0.00)},
    "NFN-NP": {"mnist": (2.55, 0.00)},
    "NFN-HNP": {"mnist": (2.65, 0.01)},
    "NG-GNN-0": {"mnist": (2.38, 0.02)},
    "NG-GNN-64": {"mnist": (2.06, 0.01)},
    "ScaleGMN": {"mnist": (2.56, 0.03)},
    "ScaleGMN-B": {"mnist": (1.89, 0.00)},
}

PAPER: dict[str, dict[str, dict[str, PaperCell]]] = {
    "classification": CLASSIFICATION,
    "generalization": GENERALIZATION,
    "editing": EDITING,
}


def paper_cell(task: str, paper_row: str | None, view: str) -> PaperCell | None:
    """(mean, std) the paper reports for ``paper_row`` on ``view``, or ``None``."""
    if paper_row is None:
        return None
    return PAPER.get(task, {}).get(paper_row, {}).get(view)
