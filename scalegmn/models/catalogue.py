"""The presets as models: the network architecture each was written for, its number of outputs,
and ``scalegmn presets``, which builds every preset and prints its parameter count beside the
original code's."""

from __future__ import annotations

from scalegmn.models.metanetworks import build_model, count_parameters
from scalegmn.models.presets import (
    ORIGINAL_PARAMS,
    PARAM_NOTES,
    PRESET_SOURCES,
    Preset,
    get_preset,
    list_presets,
)
from scalegmn.weightspace.network import NetworkSpec, cnn_zoo_spec, dws_siren_spec, nfn_siren_spec


def preset_spec(name: str) -> NetworkSpec:
    """The architecture of the data a preset was written for."""
    group, model = name.split("/")
    if group in ("mnist_cls", "fmnist_cls", "mnist_editing"):
        return dws_siren_spec()
    if group == "cifar_inr_cls":
        return nfn_siren_spec()
    act = "tanh" if "tanh" in model else "relu"
    return cnn_zoo_spec(act)


def preset_outputs(preset: Preset) -> int:
    """Number of model outputs of the preset's task (10 classes, 1 accuracy, 0 when editing)."""
    return {"classification": 10, "generalization": 1, "editing": 0}[preset.task]


def add_arguments(parser) -> None:
    """Add the ``scalegmn presets`` arguments to ``parser``."""
    parser.add_argument("names", nargs="*", help="presets to show (default: all)")


def run(args) -> int:
    """Build each named preset (default: all); print its parameter count beside the original's
    (a baseline's preset: beside its source)."""
    names = args.names or list_presets()
    print(f"{'preset':36s} {'task':15s} {'params':>10s} {'original':>10s}  note")
    for name in names:
        p = get_preset(name)
        model = build_model(p.model, preset_spec(name), task=p.task, n_outputs=preset_outputs(p))
        ours, orig = count_parameters(model), ORIGINAL_PARAMS.get(name)
        if orig is None:  # a baseline's preset: its source (sizes: models/presets.py)
            source = PRESET_SOURCES.get(name) or f"{p.model.kind} at its paper's size"
            print(f"{name:36s} {p.task:15s} {ours:10,d} {'-':>10s}  {source}")
            continue
        note = "same" if ours == orig else PARAM_NOTES.get(name, "differs")
        print(f"{name:36s} {p.task:15s} {ours:10,d} {orig:10,d}  {note}")
    return 0
