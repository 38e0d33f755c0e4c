"""config.yaml as one validated object: the EXPERIMENTS section (tables, training), the whole
file (:class:`PipelineConfig`) and one resolved train job (:class:`TrainJob`).

Pure stdlib so the Snakefile parses fast. Every key is checked by the one schema engine
(:mod:`scalegmn.schema`) when the Snakefile is parsed; a typo raises
:class:`~scalegmn.errors.ConfigError` naming the dotted key and, where possible, the key meant.
Cross-references are checked too: a column's view must be defined, its preset must exist and fit
the table's task, every override must be a valid key and value of that preset.

A train job is one (task, view, model, seed). Its settings are resolved by layering overrides on a
model preset (``scalegmn.models.presets``) and on the default execution policy
(``scalegmn.execution``)::

    preset (column preset, + "_bidir" for bidirectional rows), ExecutionConfig()
      <- table.model / table.optim / table.execution     (e.g. the quick CPU settings of the embedded default)
      <- column.model / column.optim / column.execution  (per dataset)
      <- row.model / row.optim / row.execution           (per model, e.g. kind: mlp)

:meth:`TrainJob.to_json` is the job's settings as one JSON string with sorted keys (the train
rule's ``params``), so reordering config keys changes nothing and changing one model's
hyperparameter changes only that model's jobs; the workflow script turns it back into a
:class:`TrainJob` with :meth:`TrainJob.from_json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scalegmn import overrides, schema
from scalegmn.data.config import DataConfig, DatasetConfig, ViewConfig, check_local_paths
from scalegmn.errors import ConfigError
from scalegmn.execution import ExecutionConfig
from scalegmn.models.presets import ModelConfig, OptimConfig, get_preset
from scalegmn.schema import derived, setting
from scalegmn.train.tracking import check_loggers
from scalegmn.vocabulary import PRESET_TASKS, TASKS

__all__ = ["ColumnConfig", "ExperimentsConfig", "PipelineConfig", "RowConfig",
           "TableConfig", "TrainJob", "TrainingConfig", "merge", "table_from_params",
           "table_params"]


def _overrides(key: str, value: Any) -> dict[str, Any]:
    """A mapping of preset overrides, dotted keys expanded to nested dicts."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected a mapping of overrides, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for k, v in value.items():
        parts = str(k).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        if isinstance(v, Mapping):
            node[parts[-1]] = merge(node.get(parts[-1], {}), _overrides(f"{key}.{k}", v))
        else:
            node[parts[-1]] = v
    return out


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: ``top`` wins; nested mappings merge key by key."""
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _model_overrides() -> Any:
    return setting(default_factory=dict, keys_of=ModelConfig,
                   doc="overrides of the preset's model keys (scalegmn.models.presets.ModelConfig)")


def _optim_overrides() -> Any:
    return setting(default_factory=dict, keys_of=OptimConfig,
                   doc="overrides of the preset's optim keys (scalegmn.models.presets.OptimConfig)")


def _execution_overrides() -> Any:
    return setting(default_factory=dict, keys_of=ExecutionConfig,
                   doc="overrides of the execution policy (scalegmn.execution.ExecutionConfig): how "
                   "the model runs, not what it computes")


#: The overridable sections of a job, in the order table <- column <- row merges each of them.
OVERRIDES = ("model", "optim", "execution")

#: Keys that left ``model:``/``optim:`` for ``execution:``, with what to write instead.
#: ``best.pt`` files written before still hold them in their settings
#: (:meth:`TrainJob.from_settings` maps them); config.yaml may not.
LEGACY_EXECUTION_KEYS = {
    "model": {"checkpoint": "execution.memory: checkpoint",
              "lean_autograd": "execution.memory: plain (for lean_autograd: false)",
              "lean_min_mb": "execution.lean_min_mb", "checkpoint_chunk": "execution.checkpoint_chunk"},
    "optim": {"micro_batch_size": "execution.micro_batch_size"},
}


def _parse_overrides(m: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    out = {part: _overrides(f"{where}.{part}", m.get(part)) for part in OVERRIDES}
    for part, moved in LEGACY_EXECUTION_KEYS.items():
        for key in out[part]:
            if key in moved:
                raise ConfigError(f"{where}.{part}.{key}", f"moved to the execution section; use {moved[key]}")
    return out


def _legacy_execution(model: dict[str, Any], optim: dict[str, Any]) -> dict[str, Any]:
    """The execution overrides held by the model/optim overrides of a job written before the
    ``execution:`` section (removed from ``model`` and ``optim``). ``checkpoint: true`` ->
    ``memory: checkpoint`` (it always overrode lean autograd), ``lean_autograd: false`` ->
    ``plain``, else ``auto``; ``lean_min_mb``, ``checkpoint_chunk`` and ``micro_batch_size`` keep
    their names."""
    old = {key: part.pop(key) for part, name in ((model, "model"), (optim, "optim"))
           for key in list(part) if key in LEGACY_EXECUTION_KEYS[name]}
    execution = {k: v for k, v in old.items() if k not in ("checkpoint", "lean_autograd")}
    if "checkpoint" in old or "lean_autograd" in old:
        if old.get("checkpoint", False):
            execution["memory"] = "checkpoint"
        else:
            execution["memory"] = "auto" if old.get("lean_autograd", True) else "plain"
    return execution


@dataclass(frozen=True, kw_only=True)
class ColumnConfig:
    """One column of a table: a view (H4's dataset view) trained with a preset family."""

    view: str = derived()
    label: str = setting(None, doc="column heading (default: the view's name)")
    preset: str = setting(doc="model preset of the column (`scalegmn presets` lists them)")
    real: bool = setting(False, doc="trained on the real data: show the paper's number beside ours")
    model: dict[str, Any] = _model_overrides()
    optim: dict[str, Any] = _optim_overrides()
    execution: dict[str, Any] = _execution_overrides()

    @classmethod
    def from_mapping(cls, key: str, view: str, m: Any) -> ColumnConfig:
        """Validate the column entry ``m`` of ``view`` at ``key``."""
        m = schema.check_keys(m, key, schema.keys(cls), ("preset",))
        label = schema.check(cls, "label", m.get("label", view), f"{key}.label")
        return schema.build(cls, m, key, view=view, label=label, **_parse_overrides(m, key))


@dataclass(frozen=True, kw_only=True)
class RowConfig:
    """One row of a table: a model. ``bidirectional`` picks the ``<preset>_bidir`` preset."""

    key: str = derived()
    label: str = setting(None, doc="row heading (default: the row's key)")
    bidirectional: bool = setting(False, doc="use the `<preset>_bidir` preset (ScaleGMN-B)")
    paper_row: str | None = setting(None, doc="the paper's row shown for comparison")
    model: dict[str, Any] = _model_overrides()
    optim: dict[str, Any] = _optim_overrides()
    execution: dict[str, Any] = _execution_overrides()

    @classmethod
    def from_mapping(cls, key: str, name: str, m: Any) -> RowConfig:
        """Validate the row entry ``m`` of model ``name`` at ``key``."""
        m = schema.check_keys(m, key, schema.keys(cls))
        label = schema.check(cls, "label", m.get("label", name), f"{key}.label")
        return schema.build(cls, m, key, key=name, label=label, **_parse_overrides(m, key))


def _seeds_problem(seeds: Any) -> str | None:
    if (
        not isinstance(seeds, list | tuple)
        or not seeds
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        return f"expected a list of distinct integers >= 0, got {list(seeds) if isinstance(seeds, tuple) else seeds!r}"
    return None


@dataclass(frozen=True, kw_only=True)
class TableConfig:
    """A results table: rows (models) x columns (views), each cell mean +- std over seeds."""

    name: str = derived()
    title: str = setting(None, doc="the table's title (default: its name)")
    task: str = setting(choices=TASKS, doc="classification | generalization | editing | embedding")
    seeds: tuple[int, ...] = setting(doc="training seeds of every cell (distinct integers >= 0)")
    columns: tuple[ColumnConfig, ...] = setting(doc="view name -> column settings, in table order")
    rows: tuple[RowConfig, ...] = setting(doc="model name -> row settings, in table order")

    #: ``columns`` and ``rows`` are mappings of named entries (see :meth:`PipelineConfig.describe`).
    ENTRIES = {"columns": ("<view>", ColumnConfig), "rows": ("<model>", RowConfig)}
    model: dict[str, Any] = _model_overrides()
    optim: dict[str, Any] = _optim_overrides()
    execution: dict[str, Any] = _execution_overrides()

    @classmethod
    def from_mapping(cls, key: str, name: str, m: Any) -> TableConfig:
        """Validate the ``tables.<name>`` entry ``m``: task, seeds, columns and rows."""
        m = schema.check_keys(m, key, schema.keys(cls), ("task", "seeds", "columns", "rows"))
        task = m["task"]
        if task not in TASKS:
            raise ConfigError(f"{key}.task", f"{task!r} is not one of {', '.join(TASKS)}")
        problem = _seeds_problem(m["seeds"])
        if problem:
            raise ConfigError(f"{key}.seeds", problem)
        for part in ("columns", "rows"):
            if not isinstance(m[part], Mapping) or not m[part]:
                raise ConfigError(f"{key}.{part}", "expected a non-empty mapping")
        columns = tuple(
            ColumnConfig.from_mapping(f"{key}.columns.{v}", str(v), c) for v, c in m["columns"].items()
        )
        rows = tuple(RowConfig.from_mapping(f"{key}.rows.{r}", str(r), c) for r, c in m["rows"].items())
        return schema.build(
            cls, m, key, name=name, title=schema.check(cls, "title", m.get("title", name), f"{key}.title"),
            task=task, seeds=tuple(m["seeds"]), columns=columns, rows=rows, **_parse_overrides(m, key),
        )

    def column(self, view: str) -> ColumnConfig:
        """The column of ``view``; ``KeyError`` when the table has none."""
        for c in self.columns:
            if c.view == view:
                return c
        raise KeyError(view)

    def row(self, model: str) -> RowConfig:
        """The row of ``model``; ``KeyError`` when the table has none."""
        for r in self.rows:
            if r.key == model:
                return r
        raise KeyError(model)


def _device_problem(device: str) -> str | None:
    if device in ("auto", "cpu", "cuda") or device.startswith("cuda:"):
        return None
    return f"expected auto, cpu, cuda or cuda:N, got {device!r}"


@dataclass(frozen=True)
class TrainingConfig:
    """``training``: run-time settings shared by every train job (they do not change results)."""

    device: str = setting("auto", check=_device_problem, doc="auto (CUDA when available, else CPU) | cpu | cuda | cuda:N")
    checkpoint_every_steps: int = setting(
        200, min=1, doc="resume checkpoint period in optimizer steps (a killed job restarts from it)")
    loggers: tuple[str, ...] = setting(
        ("csv",), check=check_loggers,
        doc="experiment trackers of every train job: csv (history.csv, always written), tensorboard, "
            "wandb (WANDB_MODE, default offline), mlflow (MLFLOW_TRACKING_URI, default a file store); "
            "optional packages, imported only when chosen; changing them reruns nothing")
    tracking_dir: str = setting("results/tracking", doc="where tensorboard/wandb/mlflow write their files")
    conda_env: str = setting("cpu", choices=("cpu", "cuda"),
                             doc="with --sdm conda, the train rule's environment: envs/scalegmn-<cpu|cuda>.yaml "
                                 "(profiles/slurm sets cuda)")

    @classmethod
    def from_mapping(cls, key: str, m: Any) -> TrainingConfig:
        """Validate the ``training`` mapping ``m`` (defaults when it is None)."""
        return schema.build(cls, m, key)


@dataclass(frozen=True)
class ExperimentsConfig:
    """The EXPERIMENTS section: ``tables`` and ``training``."""

    tables: dict[str, TableConfig]
    training: TrainingConfig

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> ExperimentsConfig:
        """Validate ``tables`` and ``training``, then every job's view, settings and preset."""
        tables_m = config.get("tables")
        if not isinstance(tables_m, Mapping):
            raise ConfigError("tables", "expected a mapping of table name -> table settings")
        tables = {}
        for name, m in tables_m.items():
            if not str(name).replace("_", "").isalnum():
                raise ConfigError(f"tables.{name}", "table names may hold only letters, digits and _")
            tables[str(name)] = TableConfig.from_mapping(f"tables.{name}", str(name), m)
        exp = cls(tables=tables, training=TrainingConfig.from_mapping("training", config.get("training")))
        if "views" in config or "datasets" in config:  # a whole config.yaml, not only its tables
            views = config.get("views") or {}
            exp.check_views(views if isinstance(views, Mapping) else {})
        exp.check_consistent()
        exp.check_presets()
        return exp

    def check_presets(self) -> None:
        """Every job's preset exists, fits the table's task, and accepts its overrides."""
        for t in self.tables.values():
            for c in t.columns:
                for r in t.rows:
                    s = json.loads(_settings(t, c, r))
                    where = f"tables.{t.name}.columns.{c.view}.preset"
                    try:
                        preset = get_preset(s["preset"])
                    except ConfigError as err:
                        raise ConfigError(where, err.problem) from None
                    if preset.task not in PRESET_TASKS[t.task]:
                        raise ConfigError(where, f"preset {s['preset']!r} is for {preset.task}, the table is {t.task}"
                                                 f" (use a preset for {' or '.join(PRESET_TASKS[t.task])})")
                    try:
                        TrainJob.from_settings(dict(s, seed=t.seeds[0]))
                    except ConfigError as err:
                        raise ConfigError(_override_origin(t, c, r, err.key), err.problem) from None

    def check_views(self, views: Mapping[str, Any]) -> None:
        """Every column names a view defined under ``views`` (else no rule makes its stores)."""
        for t in self.tables.values():
            for c in t.columns:
                if c.view not in views:
                    hint = schema.suggest(c.view, views, what="view").partition("; ")[2] if views else "'views' is empty"
                    raise ConfigError(
                        f"tables.{t.name}.columns.{c.view}",
                        f"view '{c.view}' is not defined under 'views'; {hint}",
                    )

    def check_consistent(self) -> None:
        """Two tables that train the same (task, view, model) must agree on its settings."""
        seen: dict[tuple[str, str, str], tuple[str, str]] = {}
        for t in self.tables.values():
            for c in t.columns:
                for r in t.rows:
                    s = _settings(t, c, r)
                    prev = seen.setdefault((t.task, c.view, r.key), (t.name, s))
                    if prev[1] != s:
                        raise ConfigError(
                            f"tables.{t.name}.rows.{r.key}",
                            f"trains {t.task}/{c.view}/{r.key} differently from table "
                            f"'{prev[0]}'; give the model another name in one of them",
                        )

    def jobs(self, table: str | None = None) -> list[tuple[str, str, str, int]]:
        """(task, view, model, seed) of every train job (of one table, or of all)."""
        out = []
        for t in self.tables.values():
            if table is not None and t.name != table:
                continue
            for c in t.columns:
                for r in t.rows:
                    out.extend((t.task, c.view, r.key, s) for s in t.seeds)
        return list(dict.fromkeys(out))

    def find(self, task: str, view: str, model: str) -> tuple[TableConfig, ColumnConfig, RowConfig]:
        """The first table of ``task`` with column ``view`` and row ``model``; ``ConfigError`` if none."""
        for t in self.tables.values():
            if t.task != task:
                continue
            try:
                return t, t.column(view), t.row(model)
            except KeyError:
                continue
        raise ConfigError("tables", f"no table trains task={task} view={view} model={model}")

    def job(self, task: str, view: str, model: str, seed: int) -> TrainJob:
        """The resolved settings of one train job."""
        t, c, r = self.find(task, view, model)
        return TrainJob.from_settings(dict(json.loads(_settings(t, c, r)), seed=int(seed)))

    def job_settings(self, task: str, view: str, model: str, seed: int) -> str:
        """Canonical JSON (sorted keys) of everything that determines one train job's result: the
        train rule's ``params`` (:meth:`TrainJob.to_json`)."""
        return self.job(task, view, model, seed).to_json()


@dataclass(frozen=True)
class PipelineConfig:
    """The whole config.yaml: DATA (``datasets``, ``views``) and EXPERIMENTS (``tables``,
    ``training``), validated together when the Snakefile is parsed.

    Beyond each section's own keys, values and ranges, it checks the top-level keys (a misspelt
    ``trainig:`` would otherwise be ignored and its settings replaced by the defaults), that
    every ``source: local`` path exists, and that every table column names a defined view.
    """

    data: DataConfig
    experiments: ExperimentsConfig

    #: The top-level keys of config.yaml.
    SECTIONS = ("datasets", "views", "tables", "training")

    @classmethod
    def from_mapping(cls, config: Any) -> PipelineConfig:
        """Validate the whole config.yaml mapping (see the class docstring for the checks)."""
        config = overrides.resolve(schema.check_keys(config, "", cls.SECTIONS + overrides.KEYS))
        check_local_paths(config)
        data = DataConfig.from_mapping(config)
        sections = {k: v for k, v in config.items() if k in ("tables", "training")}
        experiments = ExperimentsConfig.from_mapping({**sections, "views": data.views})  # views: cross-checked
        return cls(data=data, experiments=experiments)

    @classmethod
    def describe(cls) -> list[schema.KeyDoc]:
        """Every key of config.yaml with its type, default and doc; named entries appear as
        ``<dataset>``, ``<view>``, ``<table>``, ``<model>`` (e.g. ``tables.<table>.rows.<model>.label``)."""
        out = [
            *(d for d in schema.describe(DatasetConfig, "datasets.<dataset>")),
            schema.KeyDoc("datasets.<dataset>.local.path", "str", None,
                          "source local: the archive, the extracted dataset root, or a folder holding it", None),
            *schema.describe(ViewConfig, "views.<view>"),
            *schema.describe(TrainingConfig, "training"),
            schema.KeyDoc("only", "str | list[str]", None, overrides.DOCS["only"], None),
            schema.KeyDoc("run", "str", None, overrides.DOCS["run"], overrides.RUN_MODES),
        ]
        for d in schema.describe(TableConfig, "tables.<table>"):
            part = d.key.rpartition(".")[2]
            if part in TableConfig.ENTRIES:
                name, section = TableConfig.ENTRIES[part]
                out.extend(schema.describe(section, f"{d.key}.{name}"))
            else:
                out.append(d)
        return out


@dataclass(frozen=True)
class TrainJob:
    """One train job (task, view, preset with overrides, seed), resolved and validated.

    Built from the train rule's ``params`` by :meth:`from_json` (once, in the workflow script) and
    handed to :func:`scalegmn.train.loop.run_job`. :meth:`settings` is what metrics.json and the
    checkpoint record (``settings``); :meth:`to_json` is its canonical JSON.

    Attributes:
        task, view, preset, seed: the job.
        model_overrides, optim_overrides: the overrides of the preset, as in config.yaml.
        execution_overrides: the overrides of the default execution policy, as in config.yaml.
        model, optim: the preset's configurations with the overrides applied.
        execution: how the model runs (precision, memory policy, micro-batches).
    """

    task: str
    view: str
    preset: str
    seed: int
    model_overrides: dict[str, Any] = field(default_factory=dict)
    optim_overrides: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    execution_overrides: dict[str, Any] = field(default_factory=dict)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> TrainJob:
        """The job of a settings mapping (:meth:`settings`); ConfigError naming a bad key.

        Settings written before the ``execution:`` section (the ``settings`` of an older
        ``best.pt``) hold the memory keys under ``model``/``optim``
        (:data:`LEGACY_EXECUTION_KEYS`): they are mapped into ``execution``."""
        schema.check_keys(settings, "settings", ("task", "view", "preset", "seed", *OVERRIDES),
                          ("task", "view", "preset", "seed"))
        task = schema.choice(settings["task"], "settings.task", TASKS)
        preset = get_preset(settings["preset"])
        model = dict(settings.get("model") or {})
        optim = dict(settings.get("optim") or {})
        execution = merge(_legacy_execution(model, optim), settings.get("execution") or {})
        return cls(
            task=task, view=str(settings["view"]), preset=preset.name, seed=int(settings["seed"]),
            model_overrides=model, optim_overrides=optim, execution_overrides=execution,
            model=preset.model.override(model), optim=preset.optim.override(optim),
            execution=ExecutionConfig().override(execution),
        )

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        """The job of the train rule's ``params.settings`` (:meth:`to_json`)."""
        return cls.from_settings(json.loads(text))

    def settings(self) -> dict[str, Any]:
        """The job as config.yaml states it: task, view, preset, seed and the overrides (keys in
        sorted order, as :meth:`to_json` writes them)."""
        return {"execution": self.execution_overrides, "model": self.model_overrides,
                "optim": self.optim_overrides, "preset": self.preset, "seed": self.seed,
                "task": self.task, "view": self.view}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of :meth:`settings`; it also fingerprints resume files."""
        return json.dumps(self.settings(), sort_keys=True)


def _flat_keys(mapping: Mapping[str, Any], prefix: str = "") -> set[str]:
    out = set()
    for k, v in mapping.items():
        if isinstance(v, Mapping):
            out |= _flat_keys(v, f"{prefix}{k}.")
        else:
            out.add(f"{prefix}{k}")
    return out


def _override_origin(t: TableConfig, c: ColumnConfig, r: RowConfig, key: str) -> str:
    """The config key that set the failing override ``key`` (``optim.lr``) for this cell: the
    row's, else the column's, else the table's block (the most specific one wins)."""
    part, _, name = key.partition(".")
    for where, block in (
        (f"tables.{t.name}.rows.{r.key}", r),
        (f"tables.{t.name}.columns.{c.view}", c),
        (f"tables.{t.name}", t),
    ):
        overrides = getattr(block, part, None)
        if isinstance(overrides, Mapping) and name in _flat_keys(overrides):
            return f"{where}.{part}.{name}"
    return f"tables.{t.name} (rows.{r.key}/columns.{c.view}/{part} overrides): {key}"


def _settings(t: TableConfig, c: ColumnConfig, r: RowConfig) -> str:
    preset = c.preset + ("_bidir" if r.bidirectional else "")
    overrides = {part: merge(merge(getattr(t, part), getattr(c, part)), getattr(r, part)) for part in OVERRIDES}
    return json.dumps({"task": t.task, "view": c.view, "preset": preset, **overrides}, sort_keys=True)


def table_params(name: str, m: Mapping[str, Any]) -> str:
    """Canonical JSON of one table's config for the table rule's params.

    Keys are sorted (reordering settings changes nothing), except the order of ``columns`` and
    ``rows``, which is the table's layout: they are kept as ordered ``[key, value]`` lists.
    """
    body = dict(m)
    for part in ("columns", "rows"):
        if isinstance(body.get(part), Mapping):
            body[part] = [[k, v] for k, v in body[part].items()]
    return json.dumps({"name": name, "table": body}, sort_keys=True)


def table_from_params(params: str) -> TableConfig:
    """The TableConfig of :func:`table_params`' JSON (columns and rows in the config's order)."""
    d = json.loads(params)
    body = dict(d["table"])
    for part in ("columns", "rows"):
        if isinstance(body.get(part), list):
            body[part] = {k: v for k, v in body[part]}
    return TableConfig.from_mapping(f"tables.{d['name']}", d["name"], body)
