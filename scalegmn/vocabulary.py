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
        higher_is_better: accuracy, Kendall tau and Recall@1: True; editing MSE: False.
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
    "embedding": TaskMetric("recall_at_1", "test Recall@1", True, 100.0, "%"),
}
TASKS: tuple[str, ...] = tuple(TASK_METRICS)

#: task -> its further test metrics (``extra_metrics`` of a job's metrics.json), in the order
#: tables show them; a metric a job lacks (no classes, no accuracies) is shown as "-".
EXTRA_METRICS: dict[str, dict[str, TaskMetric]] = {
    "embedding": {m.name: m for m in (
        TaskMetric("recall_at_1", "instance Recall@1", True, 100.0, "%"),
        TaskMetric("recall_at_5", "instance Recall@5", True, 100.0, "%"),
        TaskMetric("recall_at_10", "instance Recall@10", True, 100.0, "%"),
        TaskMetric("mrr", "instance MRR", True, 1.0, ""),
        TaskMetric("sibling_recall_at_1", "same-run/image Recall@1", True, 100.0, "%"),
        TaskMetric("sibling_recall_at_5", "same-run/image Recall@5", True, 100.0, "%"),
        TaskMetric("sibling_recall_at_10", "same-run/image Recall@10", True, 100.0, "%"),
        TaskMetric("sibling_mrr", "same-run/image MRR", True, 1.0, ""),
        TaskMetric("class_recall_at_1", "same-class Recall@1 (nearest-neighbour accuracy)", True, 100.0, "%"),
        TaskMetric("class_mrr", "same-class MRR", True, 1.0, ""),
        TaskMetric("probe_r2", "zero-shot accuracy R^2 (ridge probe)", True, 1.0, ""),
        TaskMetric("probe_mse", "zero-shot accuracy MSE (ridge probe)", False, 1.0, ""),
        TaskMetric("probe_spearman", "zero-shot accuracy Spearman (ridge probe)", True, 1.0, ""),
        TaskMetric("interp_naive_mse", "render MSE of the naive midpoint of an INR and its positive", False,
                   100.0, "x 1e-2"),
        TaskMetric("interp_aligned_mse", "render MSE of that midpoint after the encoder's alignment", False,
                   100.0, "x 1e-2"),
        TaskMetric("interp_oracle_mse", "render MSE of the midpoint with the symmetry undone exactly", False,
                   100.0, "x 1e-2"),
    )},
}

#: task -> the tasks whose presets it accepts: an embedding encoder is the invariant model of a
#: classification or generalization preset with its readout giving the embedding.
PRESET_TASKS: dict[str, tuple[str, ...]] = {
    **{task: (task,) for task in TASK_METRICS},
    "embedding": ("classification", "generalization"),
}

#: The splits of every view (results/cache/<view>/<split>.zarr).
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: dataset name -> on-disk format (scalegmn.data.formats module name).
DATASET_FORMATS: dict[str, str] = {
    "mnist_inr": "mnist_inr",
    "fmnist_inr": "fmnist_inr",
    "cifar10_inr": "cifar_inr",
    "cifar10_gs": "cnn_zoo",
    "svhn_gs": "cnn_zoo",
    "cnn_wild_park": "wild_park",
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
    "cnn_wild_park": "cnn_wild_park",  # the real zip's top folder is [unk]: found by its checkpoints
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

#: Which checkpoints of each Small CNN Zoo run a dataset ingests and a view reads.
CHECKPOINT_CHOICES: tuple[str, ...] = ("final", "all")


def alternatives(names) -> str:
    """A wildcard regex matching exactly ``names`` (and nothing when there is none)."""
    names = sorted(names)
    return "|".join(names) if names else "(?!x)x"


#: Experiment trackers a training job can log to (``training.loggers``); csv (history.csv) is
#: always written, the others are optional extras (scalegmn.train.tracking).
LOGGERS: tuple[str, ...] = ("csv", "tensorboard", "wandb", "mlflow")
