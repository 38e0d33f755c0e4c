"""The DATA section of ``config.yaml`` as frozen dataclasses, validated when the Snakefile is parsed.

Standard library only: parsing the workflow must not import torch. Every problem raises
:class:`~scalegmn.errors.ConfigError` naming the dotted key and what to write instead, e.g.
``config key 'datasets.mnist_inr.canonicalise': unknown key; did you mean 'canonicalize'?``.

Datasets (``datasets.<name>``) say where the networks come from and how they are prepared;
views (``views.<name>``) say what training reads: a dataset, an activation filter (Small CNN
Zoo) and train-only augmentation.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from scalegmn.data.standins.sizes import resolve_size
from scalegmn.errors import ConfigError

#: dataset name -> on-disk format (scalegmn.data.formats module name)
DATASET_FORMATS: dict[str, str] = {
    "mnist_inr": "mnist_inr",
    "fmnist_inr": "fmnist_inr",
    "cifar10_inr": "cifar_inr",
    "cifar10_gs": "cnn_zoo",
    "svhn_gs": "cnn_zoo",
}

#: dataset name -> name of its root folder inside the archive (and under results/data/<ds>/raw/)
DATASET_ROOTS: dict[str, str] = {
    "mnist_inr": "mnist-inrs",
    "fmnist_inr": "fmnist_inrs",
    "cifar10_inr": "siren_cifar_wts",
    "cifar10_gs": "cifar10",
    "svhn_gs": "svhn_cropped",
}

#: Real download URLs, corrected for the traps of datasets.md §0 (dl=1, confirm=t, public GCS
#: endpoint). A URL that is not an archive (the NFN split CSV) is copied into the dataset root.
DEFAULT_URLS: dict[str, tuple[str, ...]] = {
    "mnist_inr": (
        "https://www.dropbox.com/sh/56pakaxe58z29mq/AABrctdu2U65jGYr2WQRzmMna/mnist-inrs.zip?dl=1",
    ),
    "fmnist_inr": (
        "https://www.dropbox.com/sh/56pakaxe58z29mq/AAAssoHq719OmSHSKKTiKKHGa/fmnist_inrs.zip?dl=1",
    ),
    "cifar10_inr": (
        "https://drive.usercontent.google.com/download?id=14RUV3eN6-lSOr9XuwyKFQFVcqKl0L2bw"
        "&export=download&confirm=t",
    ),
    "cifar10_gs": (
        "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/cifar10.tar.xz",
        "https://github.com/AllanYangZhou/nfn/raw/refs/heads/main/experiments/"
        "predict_gen_data_splits/cifar10_split.csv",
    ),
    "svhn_gs": (
        "https://storage.googleapis.com/gresearch/smallcnnzoo-dataset/svhn_cropped.tar.xz",
        "https://github.com/AllanYangZhou/nfn/raw/refs/heads/main/experiments/"
        "predict_gen_data_splits/svhn_split.csv",
    ),
}

SOURCES = ("standin", "download", "local")
ARCHIVES = ("auto", "zip", "tar", "tar.gz", "tar.xz")
CANONICALIZATIONS = ("none", "phase", "phase+sign")
BAD_FILE_POLICIES = ("error", "skip")
STANDIN_SIZES = ("tiny", "small", "default")
VIEW_ACTIVATIONS = ("relu", "tanh", "both")
SPLITS = ("train", "val", "test")


def _suggest(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(allowed)}"
    return f"unknown key; {hint}"


def _check_keys(mapping: Any, where: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(where, f"expected a mapping, got {type(mapping).__name__} {mapping!r}")
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}", _suggest(str(key), allowed))
    return mapping


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        close = difflib.get_close_matches(str(value), list(allowed), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(where, f"{value!r} is not one of {', '.join(allowed)}{hint}")
    return value


def _int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(where, f"expected an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class StandinConfig:
    """``datasets.<name>.standin``: size (tiny|small|default or a mapping of counts) and seed."""

    size: str | tuple[tuple[str, int], ...] = "default"
    seed: int = 0

    @classmethod
    def from_mapping(cls, d: Any, where: str, dataset: str) -> StandinConfig:
        d = _check_keys(d, where, ("size", "seed"))
        size = d.get("size", "default")
        if isinstance(size, Mapping):
            size = tuple(sorted((str(k), _int(v, f"{where}.size.{k}", 1)) for k, v in size.items()))
            try:  # a misspelt count is caught here, not when the build job runs
                resolve_size(dataset, dict(size))
            except ConfigError as err:
                raise ConfigError(f"{where}.{err.key}", err.problem) from None
        else:
            size = _choice(size, f"{where}.size", STANDIN_SIZES)
        return cls(size=size, seed=_int(d.get("seed", 0), f"{where}.seed"))

    def size_arg(self) -> str | dict[str, int]:
        """The size as ``build_standin`` takes it."""
        return self.size if isinstance(self.size, str) else dict(self.size)


@dataclass(frozen=True)
class DownloadConfig:
    """``datasets.<name>.download``: URLs (archives, plus plain files such as split CSVs)."""

    urls: tuple[str, ...] = ()
    archive: str = "auto"
    sha256: tuple[str | None, ...] = ()
    retries: int = 4

    @classmethod
    def from_mapping(cls, d: Any, where: str, default_urls: tuple[str, ...]) -> DownloadConfig:
        d = _check_keys(d, where, ("urls", "archive", "sha256", "retries"))
        urls = d.get("urls") or default_urls
        if isinstance(urls, str):
            urls = [urls]
        urls = tuple(str(u) for u in urls)
        for i, u in enumerate(urls):
            if not u.startswith(("http://", "https://", "file://")):
                raise ConfigError(f"{where}.urls[{i}]", f"{u!r} is not an http(s):// or file:// URL")
            if "storage.cloud.google.com" in u or "preview=" in u or "/view?" in u:
                raise ConfigError(
                    f"{where}.urls[{i}]",
                    f"{u!r} is a browser/viewer page, not a file; use the direct download form "
                    "(storage.googleapis.com, dl=1, drive.usercontent.google.com ... confirm=t)",
                )
        sha = d.get("sha256")
        if sha is None:
            sha = (None,) * len(urls)
        elif isinstance(sha, str):
            sha = (sha,) + (None,) * (len(urls) - 1)
        else:
            sha = tuple(sha)
        if len(sha) != len(urls):
            raise ConfigError(f"{where}.sha256", f"give one checksum (or null) per URL ({len(urls)})")
        for i, s in enumerate(sha):
            if s is not None and (
                not isinstance(s, str) or len(s) != 64 or any(c not in "0123456789abcdef" for c in s.lower())
            ):
                raise ConfigError(f"{where}.sha256[{i}]", f"{s!r} is not a 64-hex-digit sha256")
        return cls(
            urls=urls,
            archive=_choice(d.get("archive", "auto"), f"{where}.archive", ARCHIVES),
            sha256=sha,
            retries=_int(d.get("retries", 4), f"{where}.retries", 1),
        )


@dataclass(frozen=True)
class DatasetConfig:
    """One ``datasets.<name>`` entry (name is one of :data:`DATASET_FORMATS`)."""

    name: str
    source: str = "standin"
    standin: StandinConfig = field(default_factory=StandinConfig)
    download: DownloadConfig = field(default_factory=DownloadConfig)
    local_path: str | None = None
    canonicalize: str = "none"
    on_bad_file: str = "error"
    split_seed: int = 0

    KEYS = ("source", "standin", "download", "local", "canonicalize", "on_bad_file", "split_seed")

    @property
    def format(self) -> str:
        return DATASET_FORMATS[self.name]

    @property
    def root_name(self) -> str:
        return DATASET_ROOTS[self.name]

    @property
    def is_inr(self) -> bool:
        return self.format != "cnn_zoo"

    @classmethod
    def from_mapping(cls, name: str, d: Any) -> DatasetConfig:
        where = f"datasets.{name}"
        if name not in DATASET_FORMATS:
            raise ConfigError(where, _suggest(name, tuple(DATASET_FORMATS)).replace("key", "dataset"))
        d = _check_keys(d, where, cls.KEYS)
        source = _choice(d.get("source", "standin"), f"{where}.source", SOURCES)
        local = _check_keys(d.get("local"), f"{where}.local", ("path",))
        local_path = local.get("path")
        if source == "local" and not local_path:
            raise ConfigError(f"{where}.local.path", "source is 'local': give the archive or folder path")
        canon = _choice(d.get("canonicalize", "none"), f"{where}.canonicalize", CANONICALIZATIONS)
        if DATASET_FORMATS[name] == "cnn_zoo" and canon != "none":
            raise ConfigError(
                f"{where}.canonicalize",
                "phase canonicalization applies to sine INRs only; use 'none' for a CNN zoo",
            )
        return cls(
            name=name,
            source=source,
            standin=StandinConfig.from_mapping(d.get("standin"), f"{where}.standin", name),
            download=DownloadConfig.from_mapping(d.get("download"), f"{where}.download", DEFAULT_URLS[name]),
            local_path=str(local_path) if local_path else None,
            canonicalize=canon,
            on_bad_file=_choice(d.get("on_bad_file", "error"), f"{where}.on_bad_file", BAD_FILE_POLICIES),
            split_seed=_int(d.get("split_seed", 0), f"{where}.split_seed"),
        )

    def acquire_params(self) -> str:
        """Canonical JSON of what decides the raw dataset (reordering keys changes nothing).

        Only settings that can change the data belong here: ``download.retries`` does not, so
        changing it reruns nothing (the download job reads it from the config itself).
        """
        if self.source == "standin":
            body: dict[str, Any] = {"size": self.standin.size_arg(), "seed": self.standin.seed}
        elif self.source == "download":
            body = {"urls": list(self.download.urls), "archive": self.download.archive,
                    "sha256": list(self.download.sha256)}
        else:
            body = {"path": self.local_path}
        return json.dumps({"name": self.name, "source": self.source, **body}, sort_keys=True)


@dataclass(frozen=True)
class ViewConfig:
    """One ``views.<name>`` entry: what a training job reads.

    Attributes:
        dataset: a key of ``datasets``.
        activation: Small CNN Zoo filter: relu, tanh or both (mixed = hetero); None for INRs.
        aug_copies: CIFAR10-INR only: how many ``randinit_smaller_aug{k}`` copies join TRAIN.
        symmetry_copies: extra random-symmetry copies of each TRAIN network.
        seed: seed of the symmetry augmentation.
    """

    name: str
    dataset: str
    activation: str | None = None
    aug_copies: int = 0
    symmetry_copies: int = 0
    seed: int = 0

    KEYS = ("dataset", "activation", "aug_copies", "symmetry_copies", "seed")

    @classmethod
    def from_mapping(cls, name: str, d: Any, datasets: Mapping[str, DatasetConfig]) -> ViewConfig:
        where = f"views.{name}"
        d = _check_keys(d, where, cls.KEYS)
        if "dataset" not in d:
            raise ConfigError(f"{where}.dataset", "missing; name one of the datasets")
        ds = d["dataset"]
        if ds not in datasets:
            raise ConfigError(f"{where}.dataset", f"{ds!r} is not under 'datasets' ({', '.join(datasets)})")
        fmt = datasets[ds].format
        act = d.get("activation")
        if fmt == "cnn_zoo":
            act = _choice(act, f"{where}.activation", VIEW_ACTIVATIONS)
        elif act is not None:
            raise ConfigError(f"{where}.activation", "only Small CNN Zoo views filter by activation")
        aug = _int(d.get("aug_copies", 0), f"{where}.aug_copies")
        if aug and fmt != "cifar_inr":
            raise ConfigError(f"{where}.aug_copies", "only CIFAR10-INR datasets ship aug copies")
        return cls(
            name=name,
            dataset=ds,
            activation=act,
            aug_copies=aug,
            symmetry_copies=_int(d.get("symmetry_copies", 0), f"{where}.symmetry_copies"),
            seed=_int(d.get("seed", 0), f"{where}.seed"),
        )

    def params(self) -> str:
        """Canonical JSON of everything that decides this view's cache."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class DataConfig:
    """The DATA section: ``datasets`` and ``views``."""

    datasets: dict[str, DatasetConfig]
    views: dict[str, ViewConfig]

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> DataConfig:
        raw_ds = config.get("datasets") or {}
        if not isinstance(raw_ds, Mapping):
            raise ConfigError("datasets", "expected a mapping of dataset name -> settings")
        datasets = {str(n): DatasetConfig.from_mapping(str(n), d) for n, d in raw_ds.items()}
        raw_views = config.get("views") or {}
        if not isinstance(raw_views, Mapping):
            raise ConfigError("views", "expected a mapping of view name -> settings")
        for n in raw_views:
            if not str(n).isidentifier():
                raise ConfigError(f"views.{n}", "view names may hold letters, digits and '_' only")
        views = {str(n): ViewConfig.from_mapping(str(n), d, datasets) for n, d in raw_views.items()}
        return cls(datasets=datasets, views=views)


#: The sections of config.yaml: DATA (datasets, views: this module) and EXPERIMENTS (tables,
#: training: scalegmn.train.experiments).
TOP_LEVEL_KEYS = ("datasets", "views", "tables", "training")


def check_top_level_keys(config: Mapping[str, Any]) -> None:
    """Every top-level key of ``config`` is a known section (a misspelt ``trainig:`` would
    otherwise be ignored and its settings silently replaced by the defaults)."""
    for key in config:
        if key not in TOP_LEVEL_KEYS:
            raise ConfigError(str(key), _suggest(str(key), TOP_LEVEL_KEYS))


def check_local_paths(config: Mapping[str, Any]) -> None:
    """Every ``source: local`` dataset's ``local.path`` exists (relative paths from the working
    directory), so a wrong path stops the run when the Snakefile is parsed, not in a job after
    the other datasets' stages ran. Other mistakes in the section are left to
    :meth:`DataConfig.from_mapping`."""
    datasets = config.get("datasets")
    if not isinstance(datasets, Mapping):
        return
    for name, d in datasets.items():
        if not isinstance(d, Mapping) or d.get("source") != "local" or not isinstance(d.get("local"), Mapping):
            continue
        path = d["local"].get("path")
        if isinstance(path, str) and path and not os.path.exists(os.path.expanduser(path)):
            raise ConfigError(
                f"datasets.{name}.local.path",
                f"{path!r} does not exist; point it at the dataset's archive or extracted folder",
            )
