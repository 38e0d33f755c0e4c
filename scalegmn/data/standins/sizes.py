"""Names, dataset root folders and sizes of the stand-in zoos (stdlib only).

Kept free of torch so configuration checks can validate a ``size`` when the Snakefile is
parsed: ``resolve_size(name, size)`` raises :class:`~scalegmn.errors.ConfigError` on a typo.
"""

from __future__ import annotations

from collections.abc import Mapping

from scalegmn.errors import ConfigError
from scalegmn.vocabulary import DATASET_ROOTS, DATASETS

STANDINS = DATASETS

#: Counts per size and zoo. Keys:
#:   mnist_inr / fmnist_inr: ``n_train``, ``n_test`` (INRs per split), ``fit_steps`` (most Adam
#:     steps of inr_zoos.mnist_inr_recipe; an INR stops at 40 dB), ``init_draws`` (0: every INR from its own init, as the
#:     real zoos; N > 0: an experiment, N shared inits and random orbit points, see inr_zoos.py).
#:   cifar10_inr: ``n_images`` (base INRs; idx cut 75% train / 8.33% val / 16.67% test),
#:     ``n_aug`` (aug copies, each refitting the train images), ``fit_steps``, ``init_draws``.
#:   cifar10_gs / svhn_gs: ``n_runs`` (9 checkpoints each), ``train_steps`` (optimizer steps of
#:     batch 16 standing for the zoo's 86 epochs), ``n_pool`` (training images the runs draw
#:     their subsets from), ``n_test_images`` (test set shared by all runs).
#:   cnn_wild_park: ``n_runs`` (one architecture each), ``n_checkpoints`` per run, ``train_steps``
#:     (AdamW steps of batch 32), ``n_pool`` (training glyphs), ``n_test_images`` (the score's test set).
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "tiny": {
        "mnist_inr": {"n_train": 24, "n_test": 8, "fit_steps": 1000, "init_draws": 0},
        "fmnist_inr": {"n_train": 24, "n_test": 8, "fit_steps": 1000, "init_draws": 0},
        "cifar10_inr": {"n_images": 24, "n_aug": 1, "fit_steps": 100, "init_draws": 0},
        # the default's 240 steps: with the real zoo's ranges, 160 left a tiny SVHN zoo at chance
        "cifar10_gs": {"n_runs": 24, "train_steps": 240, "n_pool": 600, "n_test_images": 200},
        "svhn_gs": {"n_runs": 24, "train_steps": 240, "n_pool": 600, "n_test_images": 200},
        "cnn_wild_park": {"n_runs": 6, "n_checkpoints": 3, "train_steps": 60, "n_pool": 256, "n_test_images": 128},
    },
    "small": {
        "mnist_inr": {"n_train": 300, "n_test": 60, "fit_steps": 1000, "init_draws": 0},
        "fmnist_inr": {"n_train": 300, "n_test": 60, "fit_steps": 1000, "init_draws": 0},
        "cifar10_inr": {"n_images": 240, "n_aug": 1, "fit_steps": 150, "init_draws": 0},
        "cifar10_gs": {"n_runs": 96, "train_steps": 240, "n_pool": 2000, "n_test_images": 300},
        "svhn_gs": {"n_runs": 96, "train_steps": 240, "n_pool": 2000, "n_test_images": 300},
        "cnn_wild_park": {"n_runs": 24, "n_checkpoints": 4, "train_steps": 200, "n_pool": 1000, "n_test_images": 200},
    },
    "default": {
        # 400 + 200 INRs keep table 1 within 20 minutes on 2 cores: the fit time is proportional
        # to the count (README, "Table 1 alone", has the ranking and what 1,000 + 200 gives)
        "mnist_inr": {"n_train": 400, "n_test": 200, "fit_steps": 1000, "init_draws": 0},
        "fmnist_inr": {"n_train": 400, "n_test": 200, "fit_steps": 1000, "init_draws": 0},
        "cifar10_inr": {"n_images": 1200, "n_aug": 1, "fit_steps": 150, "init_draws": 0},
        "cifar10_gs": {"n_runs": 300, "train_steps": 240, "n_pool": 3000, "n_test_images": 300},
        "svhn_gs": {"n_runs": 300, "train_steps": 240, "n_pool": 3000, "n_test_images": 300},
        "cnn_wild_park": {"n_runs": 192, "n_checkpoints": 4, "train_steps": 200, "n_pool": 2000, "n_test_images": 300},
    },
    # The real datasets' sizes, random valid weights, nothing fitted or trained: for throughput
    # tests of the data path only (scale_zoos.py). MNIST INRs: 60k train + 10k test
    # files; CIFAR-10 INRs: 60k + 20 aug copies of the 45k train images (960k files); Small CNN
    # Zoo: 30k runs x 9 checkpoints = 270k rows of 4,970 floats. Not for F-MNIST.
    "scale": {
        "mnist_inr": {"n_train": 60000, "n_test": 10000, "fit_steps": 0, "init_draws": 0},
        "cifar10_inr": {"n_images": 60000, "n_aug": 20, "fit_steps": 0, "init_draws": 0},
        "cifar10_gs": {"n_runs": 30000, "train_steps": 0, "n_pool": 0, "n_test_images": 0},
        "svhn_gs": {"n_runs": 30000, "train_steps": 0, "n_pool": 0, "n_test_images": 0},
    },
}

#: Sizes whose zoos hold random weights (nothing fitted): data-path throughput only.
RANDOM_SIZES = ("scale",)

#: The module (in this package) that builds each zoo, and ``scale`` for the random sizes.
BUILDER_MODULES: dict[str, str] = {
    "mnist_inr": "inr_zoos",
    "fmnist_inr": "inr_zoos",
    "cifar10_inr": "inr_zoos",
    "cifar10_gs": "cnn_zoos",
    "svhn_gs": "cnn_zoos",
    "cnn_wild_park": "wild_park",
    "scale": "scale_zoos",
}

#: The modules of this package each builder module imports, itself included
#: (tests/data/standins/test_builder_code.py checks these against what an import loads).
_MODULE_CODE: dict[str, tuple[str, ...]] = {
    "inr_zoos": ("inr_zoos", "siren_fit", "images"),
    "cnn_zoos": ("cnn_zoos", "cnn_train", "cnn_reference", "images"),
    "wild_park": ("wild_park", "images"),
    "scale_zoos": ("scale_zoos", "inr_zoos", "siren_fit", "images", "cnn_train", "cnn_reference"),
}

#: What every build runs: the package, the dispatcher and this module.
_COMMON_CODE = ("__init__", "zoos", "sizes")


def builder_code(name: str, size: str | Mapping[str, int]) -> list[str]:
    """The source files of this package that building zoo ``name`` at ``size`` runs (file names,
    sorted): the ``build_standin`` rule's code inputs."""
    _check_name(name)
    random = isinstance(size, str) and size in RANDOM_SIZES
    module = BUILDER_MODULES["scale" if random else name]
    return sorted(f"{m}.py" for m in {*_COMMON_CODE, *_MODULE_CODE[module]})


def generator_seed(name: str, seed: int) -> int:
    """The torch generator seed of zoo ``name`` at ``seed``: the zoos of one seed are independent
    of each other."""
    return int(seed) * len(STANDINS) + STANDINS.index(name)


def default_root_name(name: str) -> str:
    """Folder name of a stand-in's dataset root, as the real archive extracts."""
    _check_name(name)
    return DATASET_ROOTS[name]


def _check_name(name: str) -> None:
    if name not in STANDINS:
        raise ConfigError("standins", f"unknown stand-in {name!r}; use one of {list(STANDINS)}")


def resolve_size(name: str, size: str | Mapping[str, int]) -> dict[str, int]:
    """The counts for stand-in ``name``: a named size, or a dict overriding ``"default"``.

    Raises:
        ConfigError: unknown size name, unknown count key, or a count that is not a positive
            integer.
    """
    _check_name(name)
    if isinstance(size, str):
        if size not in SIZES:
            raise ConfigError(
                "size", f"unknown size {size!r}; use one of {list(SIZES)} or a dict of counts"
            )
        if name not in SIZES[size]:
            raise ConfigError("size", f"size {size!r} has no {name} stand-in; use one of "
                                      f"{[k for k in SIZES if name in SIZES[k]]}")
        return dict(SIZES[size][name])
    counts = dict(SIZES["default"][name])
    for key, value in size.items():
        if key not in counts:
            raise ConfigError(f"size.{key}", f"not a count of {name}; use keys {sorted(counts)}")
        low = 0 if key == "init_draws" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            what = "a whole number >= 0" if low == 0 else "a positive integer"
            raise ConfigError(f"size.{key}", f"must be {what}, got {value!r}")
        counts[key] = value
    return counts
