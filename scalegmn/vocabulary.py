"""The pipeline's vocabulary: the names that the config, the rules and the package share.

Standard library only (the Snakefile imports it at parse time). Each concept is defined here once:
the tasks with the metric that selects and reports them, the splits of a view, the datasets with
their on-disk format and root folder, the symmetry kinds, the canonicalization modes and the data
sources. Everything else (config schema, wildcard constraints, metrics, tables) reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskMetric:
    """How a task's result is selected and shown.

    Attributes:
        name: the key in metrics.json (``test_<name>`` at the selected evaluation).
        label: how tables name it.
        higher_is_better: accuracy and Kendall tau: True; editing MSE: False.
        scale: converts to the unit the paper prints (accuracy in %, editing MSE in 1e-2).
        unit: that unit.
    """

    name: str
    label: str
    higher_is_better: bool
    scale: float
    unit: str

    @property
    def selection(self) -> str:
        """The comparison that makes a later evaluation the selected one: ``>=`` when higher is
        better (later ties win), ``<`` otherwise (docs/model.md §3.2)."""
        return ">=" if self.higher_is_better else "<"


#: task -> its metric; the order is the order of the paper's tables.
TASK_METRICS: dict[str, TaskMetric] = {
    "classification": TaskMetric("accuracy", "test accuracy", True, 100.0, "%"),
    "generalization": TaskMetric("kendall_tau", "test Kendall tau", True, 1.0, ""),
    "editing": TaskMetric("mse", "test MSE", False, 100.0, "x 1e-2"),
}
TASKS: tuple[str, ...] = tuple(TASK_METRICS)

#: The splits of every view (results/cache/<view>/<split>.zarr).
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: dataset name -> on-disk format (scalegmn.data.formats module name).
DATASET_FORMATS: dict[str, str] = {
    "mnist_inr": "mnist_inr",
    "fmnist_inr": "fmnist_inr",
    "cifar10_inr": "cifar_inr",
    "cifar10_gs": "cnn_zoo",
    "svhn_gs": "cnn_zoo",
}
DATASETS: tuple[str, ...] = tuple(DATASET_FORMATS)

#: Your own zoo (scalegmn.data.formats.generic): any other dataset name, a folder or archive of
#: state dicts plus manifest.csv; its root under results/data/<ds>/raw/ is GENERIC_ROOT.
GENERIC_FORMAT = "generic"
GENERIC_ROOT = "zoo"
FORMATS: tuple[str, ...] = (*dict.fromkeys(DATASET_FORMATS.values()), GENERIC_FORMAT)

#: dataset name -> name of its root folder inside the archive (and under results/data/<ds>/raw/).
DATASET_ROOTS: dict[str, str] = {
    "mnist_inr": "mnist-inrs",
    "fmnist_inr": "fmnist_inrs",
    "cifar10_inr": "siren_cifar_wts",
    "cifar10_gs": "cifar10",
    "svhn_gs": "svhn_cropped",
}

#: Where a dataset's networks come from.
SOURCES: tuple[str, ...] = ("standin", "download", "local")

#: Phase canonicalization of sine INRs (scalegmn.data.canonicalize).
CANONICALIZATIONS: tuple[str, ...] = ("none", "phase", "phase+sign")

#: The symmetry group a model respects: sign (sine/tanh), scale (ReLU, positive scalings),
#: hetero (mixed activations, per graph) or permutation only.
SYMMETRIES: tuple[str, ...] = ("sign", "scale", "hetero", "permutation")

#: Activation filter of a Small CNN Zoo view (both = mixed, the hetero setting).
VIEW_ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "both")


def alternatives(names) -> str:
    """A wildcard regex matching exactly ``names`` (and nothing when there is none)."""
    names = sorted(names)
    return "|".join(names) if names else "(?!x)x"


#: Experiment trackers a training job can log to (``training.loggers``); csv (history.csv) is
#: always written, the others are optional extras (scalegmn.train.tracking).
LOGGERS: tuple[str, ...] = ("csv", "tensorboard", "wandb", "mlflow")
