"""The DATA section of ``config.yaml`` as frozen dataclasses, validated when the Snakefile is parsed.

Standard library only: parsing the workflow must not import torch. Every problem raises
:class:`~scalegmn.errors.ConfigError` naming the dotted key and what to write instead, e.g.
``config key 'datasets.mnist_inr.canonicalise': unknown key; did you mean 'canonicalize'?``.

Datasets (``datasets.<name>``) say where the networks come from and how they are prepared;
views (``views.<name>``) say what training reads: a dataset, an activation filter (Small CNN
Zoo) and train-only augmentation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from scalegmn import schema
from scalegmn.data.standins.sizes import resolve_size
from scalegmn.errors import ConfigError
from scalegmn.schema import derived, setting
from scalegmn.vocabulary import (
    CANONICALIZATIONS,
    CHECKPOINT_CHOICES,
    DATASET_FORMATS,
    DATASET_ROOTS,
    DATASETS,
    FORMATS,
    GENERIC_FORMAT,
    GENERIC_ROOT,
    SOURCES,
    VIEW_ACTIVATIONS,
)

__all__ = ["DataConfig", "DatasetConfig", "DownloadConfig",
           "StandinConfig", "ViewConfig", "check_local_paths"]

#: Real download URLs, corrected for the traps of docs/datasets.md §0 (dl=1, confirm=t, public GCS
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
    # Neural Graphs' README points to the Zenodo record; the file name is third-party [3p]
    "cnn_wild_park": ("https://zenodo.org/records/12797219/files/cnn_wild_park.zip?download=1",),
}

ARCHIVES = ("auto", "zip", "tar", "tar.gz", "tar.xz")
BAD_FILE_POLICIES = ("error", "skip")
STANDIN_SIZES = ("tiny", "small", "default", "scale")


def _urls_problem(url: str) -> str | None:
    if not url.startswith(("http://", "https://", "file://")):
        return f"{url!r} is not an http(s):// or file:// URL"
    if "storage.cloud.google.com" in url or "preview=" in url or "/view?" in url:
        return (f"{url!r} is a browser/viewer page, not a file; use the direct download form "
                "(storage.googleapis.com, dl=1, drive.usercontent.google.com ... confirm=t)")
    return None


def _sha_problem(sha: Any) -> str | None:
    if sha is not None and (
        not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())
    ):
        return f"{sha!r} is not a 64-hex-digit sha256"
    return None


@dataclass(frozen=True)
class StandinConfig:
    """``datasets.<name>.standin``: size (tiny|small|default or a mapping of counts) and seed."""

    size: str | tuple[tuple[str, int], ...] = setting(
        "default", doc="tiny | small | default, or a mapping of counts overriding default "
        "(scalegmn/data/standins/sizes.py)")
    seed: int = setting(0, min=0, doc="seed of the stand-in zoo")

    @classmethod
    def from_mapping(cls, d: Any, where: str, dataset: str) -> StandinConfig:
        """Validate the mapping at ``where``; counts are checked against stand-in ``dataset``."""
        d = schema.check_keys(d, where, schema.keys(cls))
        size = d.get("size", "default")
        if isinstance(size, Mapping):
            size = tuple(sorted(
                (str(k), schema.check_value(v, int, {"min": 1}, f"{where}.size.{k}")) for k, v in size.items()))
            try:  # a misspelt count is caught here, not when the build job runs
                resolve_size(dataset, dict(size))
            except ConfigError as err:
                raise ConfigError(f"{where}.{err.key}", err.problem) from None
        else:
            size = schema.choice(size, f"{where}.size", STANDIN_SIZES)
        return schema.build(cls, d, where, size=size)

    def size_arg(self) -> str | dict[str, int]:
        """The size as ``build_standin`` takes it."""
        return self.size if isinstance(self.size, str) else dict(self.size)


@dataclass(frozen=True)
class DownloadConfig:
    """``datasets.<name>.download``: URLs (archives, plus plain files such as split CSVs)."""

    urls: tuple[str, ...] = setting(
        (), doc="URLs to fetch (default: the real ones, docs/datasets.md §0); plain files such as split "
        "CSVs are copied into the dataset root")
    archive: str = setting("auto", choices=ARCHIVES,
                           doc="archive type: auto (from the magic bytes); an explicit type must match the file")
    sha256: tuple[str | None, ...] = setting((), doc="null | one checksum | one checksum (or null) per URL")
    retries: int = setting(4, min=1, doc="attempts for transient failures (changes no data, reruns nothing)")

    @classmethod
    def from_mapping(cls, d: Any, where: str, default_urls: tuple[str, ...]) -> DownloadConfig:
        """Validate the mapping at ``where``; ``default_urls`` apply when it gives none."""
        d = schema.check_keys(d, where, schema.keys(cls))
        urls = d.get("urls") or default_urls
        if isinstance(urls, str):
            urls = [urls]
        urls = tuple(str(u) for u in urls)
        for i, u in enumerate(urls):
            problem = _urls_problem(u)
            if problem:
                raise ConfigError(f"{where}.urls[{i}]", problem)
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
            problem = _sha_problem(s)
            if problem:
                raise ConfigError(f"{where}.sha256[{i}]", problem)
        return schema.build(cls, d, where, urls=urls, sha256=sha)


@dataclass(frozen=True)
class DatasetConfig:
    """One ``datasets.<name>`` entry: one of :data:`~scalegmn.vocabulary.DATASETS` in its own
    format, or any other name in the ``generic`` format (your own zoo, docs/datasets.md §12)."""

    name: str = derived()
    format: str = setting(None, choices=FORMATS,
                          doc="on-disk format; the five paper datasets have theirs, any other name is generic "
                              "(a folder or archive of state dicts + manifest.csv, source local or download)")
    source: str = setting("standin", choices=SOURCES,
                          doc="standin (offline stand-in zoo) | download (the real dataset) | local (a path)")
    standin: StandinConfig = setting(default_factory=StandinConfig, doc="stand-in size and seed")
    download: DownloadConfig = setting(default_factory=DownloadConfig, doc="download URLs and checks")
    local_path: str | None = derived(None)
    canonicalize: str = setting("none", choices=CANONICALIZATIONS,
                                doc="none | phase | phase+sign (sine INRs only)")
    on_bad_file: str = setting("error", choices=BAD_FILE_POLICIES,
                               doc="error: stop at the first bad network | skip: quarantine it and go on")
    split_seed: int = setting(0, min=0, doc="seed of the MNIST validation draw")
    checkpoints: str = setting(
        "final", choices=CHECKPOINT_CHOICES,
        doc="Small CNN Zoo only: final = each run's last checkpoint (epoch 86), what the paper's splits "
            "hold; all = all nine checkpoints of each run, every one in its run's split (views choose "
            "with their own `checkpoints`; the embedding task's same-run positives)")

    #: ``local: {path: ...}`` is the key of :attr:`local_path`.
    KEYS = ("format", "source", "standin", "download", "local", "canonicalize", "on_bad_file", "split_seed",
            "checkpoints")

    @property
    def root_name(self) -> str:
        """Name of the dataset's root folder in its archive and under ``results/data/<ds>/raw/``."""
        return DATASET_ROOTS.get(self.name, GENERIC_ROOT)

    @property
    def is_inr(self) -> bool:
        """True for the INR datasets, False for the CNN zoos (a generic zoo: by its files)."""
        return self.format not in ("cnn_zoo", "wild_park")

    @classmethod
    def from_mapping(cls, name: str, d: Any) -> DatasetConfig:
        """Validate the ``datasets.<name>`` entry ``d``."""
        where = f"datasets.{name}"
        d = schema.check_keys(d, where, cls.KEYS)
        own = DATASET_FORMATS.get(name, GENERIC_FORMAT)
        fmt = schema.check(cls, "format", d.get("format", own), f"{where}.format")
        if fmt != own:
            raise ConfigError(f"{where}.format", f"{name} is in the {own} format"
                              + ("; give your own zoo another name" if name in DATASET_FORMATS else
                                 "; only the five paper datasets have their own formats"))
        source = schema.check(cls, "source", d.get("source", "standin"),
                              f"{where}.source")
        if fmt == GENERIC_FORMAT and source == "standin":
            raise ConfigError(where, schema.suggest(name, DATASETS, what="dataset")
                              + "; your own zoo (format: generic) needs source: local or download")
        local_path = schema.check_keys(d.get("local"), f"{where}.local", ("path",)).get("path")
        if source == "local" and not local_path:
            raise ConfigError(f"{where}.local.path", "source is 'local': give the archive or folder path")
        canon = schema.check(cls, "canonicalize", d.get("canonicalize", "none"), f"{where}.canonicalize")
        if fmt in ("cnn_zoo", "wild_park") and canon != "none":
            raise ConfigError(
                f"{where}.canonicalize",
                "phase canonicalization applies to sine INRs only; use 'none' for a CNN zoo",
            )
        if "checkpoints" in d and fmt != "cnn_zoo":
            raise ConfigError(f"{where}.checkpoints", "only Small CNN Zoo datasets choose checkpoints "
                              "(CNN Wild Park keeps every checkpoint; INR zoos have one network per image)")
        return schema.build(
            cls,
            {k: v for k, v in d.items() if k != "local"},
            where,
            name=name,
            source=source,
            standin=StandinConfig.from_mapping(d.get("standin"), f"{where}.standin", name),
            download=DownloadConfig.from_mapping(d.get("download"), f"{where}.download", DEFAULT_URLS.get(name, ())),
            local_path=str(local_path) if local_path else None,
            canonicalize=canon,
            format=fmt,
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
        if self.format == GENERIC_FORMAT:  # only here, so the paper datasets' params are unchanged
            body["format"] = GENERIC_FORMAT
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

    name: str = derived()
    dataset: str = setting(doc="a key of `datasets`")
    activation: str | None = setting(None, choices=VIEW_ACTIVATIONS,
                                     doc="Small CNN Zoo only: relu | tanh | both (mixed, the hetero setting)")
    aug_copies: int = setting(0, min=0, doc="CIFAR10-INR only: how many randinit_smaller_aug<k> copies join TRAIN")
    symmetry_copies: int = setting(0, min=0, doc="extra random-symmetry copies of each TRAIN network; 0 = off")
    seed: int = setting(0, min=0, doc="seed of the symmetry copies")
    checkpoints: str = setting(
        "final", choices=CHECKPOINT_CHOICES,
        doc="Small CNN Zoo only: final (each run's last checkpoint, the paper's) | all (every checkpoint; "
            "needs the dataset's `checkpoints: all`)")

    @classmethod
    def from_mapping(cls, name: str, d: Any, datasets: Mapping[str, DatasetConfig]) -> ViewConfig:
        """Validate the ``views.<name>`` entry ``d``; its ``dataset`` must be in ``datasets``."""
        where = f"views.{name}"
        d = schema.check_keys(d, where, schema.keys(cls))
        if "dataset" not in d:
            raise ConfigError(f"{where}.dataset", "missing; name one of the datasets")
        ds = d["dataset"]
        if ds not in datasets:
            raise ConfigError(f"{where}.dataset", f"{ds!r} is not under 'datasets' ({', '.join(datasets)})")
        fmt = datasets[ds].format
        act = d.get("activation")
        if fmt == "cnn_zoo":
            act = schema.choice(act, f"{where}.activation", VIEW_ACTIVATIONS)
        elif act is not None:
            raise ConfigError(f"{where}.activation", "only Small CNN Zoo views filter by activation")
        view = schema.build(cls, d, where, name=name, dataset=ds, activation=act)
        if view.aug_copies and fmt != "cifar_inr":
            raise ConfigError(f"{where}.aug_copies", "only CIFAR10-INR datasets ship aug copies")
        if "checkpoints" in d and fmt != "cnn_zoo":
            raise ConfigError(f"{where}.checkpoints", "only Small CNN Zoo views choose checkpoints")
        if view.checkpoints == "all" and datasets[ds].checkpoints != "all":
            raise ConfigError(f"{where}.checkpoints", f"'all' needs every checkpoint ingested: set "
                              f"datasets.{ds}.checkpoints: all")
        return view

    def params(self) -> str:
        """Canonical JSON of everything that decides this view's cache (``checkpoints`` only when
        not the default, so the caches of existing views keep their params)."""
        body = asdict(self)
        if body["checkpoints"] == "final":
            del body["checkpoints"]
        return json.dumps(body, sort_keys=True)


def _named(section: str, value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(section, f"expected a mapping of {what} name -> settings")
    return value


@dataclass(frozen=True)
class DataConfig:
    """The DATA section: ``datasets`` and ``views``."""

    datasets: dict[str, DatasetConfig]
    views: dict[str, ViewConfig]

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> DataConfig:
        """Validate the ``datasets`` and ``views`` sections of the whole config."""
        raw_ds = _named("datasets", config.get("datasets"), "dataset")
        datasets = {str(n): DatasetConfig.from_mapping(str(n), d) for n, d in raw_ds.items()}
        raw_views = _named("views", config.get("views"), "view")
        for n in raw_views:
            if not str(n).isidentifier():
                raise ConfigError(f"views.{n}", "view names may hold letters, digits and '_' only")
        views = {str(n): ViewConfig.from_mapping(str(n), d, datasets) for n, d in raw_views.items()}
        return cls(datasets=datasets, views=views)


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
