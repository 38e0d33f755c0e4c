"""The EXPERIMENTS section of config.yaml: which tables, which columns (views), rows (models), seeds.

Pure stdlib so the Snakefile parses fast. Every key is checked here, at parse time; a typo raises
:class:`~scalegmn.errors.ConfigError` naming the dotted key and, where possible, the key meant.

A train job is one (task, view, model, seed). Its settings are resolved by layering overrides on a
model preset (``scalegmn.models.presets``)::

    preset (column preset, + "_bidir" for bidirectional rows)
      <- table.model / table.optim        (e.g. the quick CPU settings of the embedded default)
      <- column.model / column.optim      (per dataset)
      <- row.model / row.optim            (per model, e.g. kind: mlp)

:func:`job_settings` returns them as one JSON string with sorted keys, so reordering config keys
changes nothing and changing one model's hyperparameter changes only that model's jobs.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scalegmn.errors import ConfigError
from scalegmn.models.presets import get_preset

TASKS = ("classification", "generalization", "editing")


@dataclass(frozen=True)
class TaskMetric:
    """How a task's result is selected and shown.

    ``name`` is the key in metrics.json (``test_<name>`` at the selected evaluation);
    ``scale`` converts to the unit the paper prints (accuracy in %, editing MSE in 1e-2).
    """

    name: str
    label: str
    higher_is_better: bool
    scale: float
    unit: str


TASK_METRICS: dict[str, TaskMetric] = {
    "classification": TaskMetric("accuracy", "test accuracy", True, 100.0, "%"),
    "generalization": TaskMetric("kendall_tau", "test Kendall tau", True, 1.0, ""),
    "editing": TaskMetric("mse", "test MSE", False, 100.0, "x 1e-2"),
}


def _unknown(key: str, name: str, allowed: tuple[str, ...] | list[str]) -> ConfigError:
    close = difflib.get_close_matches(name, list(allowed), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; allowed: {', '.join(allowed)}"
    return ConfigError(f"{key}.{name}" if key else name, f"unknown key{hint}")


def _check_keys(key: str, value: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()):
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected a mapping, got {type(value).__name__}")
    for k in value:
        if k not in allowed:
            raise _unknown(key, str(k), allowed)
    for k in required:
        if k not in value:
            raise ConfigError(f"{key}.{k}", "missing; add it")
    return value


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


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {value!r}")
    return value


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"expected a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True)
class ColumnConfig:
    """One column of a table: a view (H4's dataset view) trained with a preset family."""

    view: str
    label: str
    preset: str
    real: bool
    model: dict[str, Any] = field(default_factory=dict)
    optim: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, key: str, view: str, m: Any) -> ColumnConfig:
        _check_keys(key, m, ("label", "preset", "real", "model", "optim"), ("preset",))
        return cls(
            view=view,
            label=_str(f"{key}.label", m.get("label", view)),
            preset=_str(f"{key}.preset", m["preset"]),
            real=_bool(f"{key}.real", m.get("real", False)),
            model=_overrides(f"{key}.model", m.get("model")),
            optim=_overrides(f"{key}.optim", m.get("optim")),
        )


@dataclass(frozen=True)
class RowConfig:
    """One row of a table: a model. ``bidirectional`` picks the ``<preset>_bidir`` preset."""

    key: str
    label: str
    bidirectional: bool
    paper_row: str | None
    model: dict[str, Any] = field(default_factory=dict)
    optim: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, key: str, name: str, m: Any) -> RowConfig:
        _check_keys(key, m, ("label", "bidirectional", "paper_row", "model", "optim"))
        paper_row = m.get("paper_row")
        return cls(
            key=name,
            label=_str(f"{key}.label", m.get("label", name)),
            bidirectional=_bool(f"{key}.bidirectional", m.get("bidirectional", False)),
            paper_row=None if paper_row is None else _str(f"{key}.paper_row", paper_row),
            model=_overrides(f"{key}.model", m.get("model")),
            optim=_overrides(f"{key}.optim", m.get("optim")),
        )


@dataclass(frozen=True)
class TableConfig:
    """A results table: rows (models) x columns (views), each cell mean +- std over seeds."""

    name: str
    title: str
    task: str
    seeds: tuple[int, ...]
    columns: tuple[ColumnConfig, ...]
    rows: tuple[RowConfig, ...]
    model: dict[str, Any] = field(default_factory=dict)
    optim: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, key: str, name: str, m: Any) -> TableConfig:
        allowed = ("title", "task", "seeds", "columns", "rows", "model", "optim")
        _check_keys(key, m, allowed, ("task", "seeds", "columns", "rows"))
        task = m["task"]
        if task not in TASKS:
            raise ConfigError(f"{key}.task", f"{task!r} is not one of {', '.join(TASKS)}")
        seeds = m["seeds"]
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)
            or len(set(seeds)) != len(seeds)
        ):
            raise ConfigError(f"{key}.seeds", f"expected a list of distinct integers >= 0, got {seeds!r}")
        for part in ("columns", "rows"):
            if not isinstance(m[part], Mapping) or not m[part]:
                raise ConfigError(f"{key}.{part}", "expected a non-empty mapping")
        columns = tuple(
            ColumnConfig.from_mapping(f"{key}.columns.{v}", str(v), c) for v, c in m["columns"].items()
        )
        rows = tuple(RowConfig.from_mapping(f"{key}.rows.{r}", str(r), c) for r, c in m["rows"].items())
        return cls(
            name=name,
            title=_str(f"{key}.title", m.get("title", name)),
            task=task,
            seeds=tuple(seeds),
            columns=columns,
            rows=rows,
            model=_overrides(f"{key}.model", m.get("model")),
            optim=_overrides(f"{key}.optim", m.get("optim")),
        )

    def column(self, view: str) -> ColumnConfig:
        for c in self.columns:
            if c.view == view:
                return c
        raise KeyError(view)

    def row(self, model: str) -> RowConfig:
        for r in self.rows:
            if r.key == model:
                return r
        raise KeyError(model)


@dataclass(frozen=True)
class TrainingConfig:
    """Run-time settings shared by every train job (they do not change results)."""

    device: str = "auto"
    checkpoint_every_steps: int = 200
    gpu: bool = True

    @classmethod
    def from_mapping(cls, key: str, m: Any) -> TrainingConfig:
        if m is None:
            return cls()
        _check_keys(key, m, ("device", "checkpoint_every_steps", "gpu"))
        device = m.get("device", "auto")
        if not isinstance(device, str) or not (
            device in ("auto", "cpu", "cuda") or device.startswith("cuda:")
        ):
            raise ConfigError(f"{key}.device", f"expected auto, cpu, cuda or cuda:N, got {device!r}")
        every = m.get("checkpoint_every_steps", 200)
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ConfigError(f"{key}.checkpoint_every_steps", f"expected an integer >= 1, got {every!r}")
        return cls(device=device, checkpoint_every_steps=every, gpu=_bool(f"{key}.gpu", m.get("gpu", True)))


@dataclass(frozen=True)
class ExperimentsConfig:
    tables: dict[str, TableConfig]
    training: TrainingConfig

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> ExperimentsConfig:
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
                    if preset.task != t.task:
                        raise ConfigError(where, f"preset {s['preset']!r} is for {preset.task}, the table is {t.task}")
                    for part in ("model", "optim"):
                        try:
                            getattr(preset, part).override(s[part])
                        except ConfigError as err:
                            raise ConfigError(_override_origin(t, c, r, err.key), err.problem) from None

    def check_views(self, views: Mapping[str, Any]) -> None:
        """Every column names a view defined under ``views`` (else no rule makes its stores)."""
        for t in self.tables.values():
            for c in t.columns:
                if c.view not in views:
                    close = difflib.get_close_matches(c.view, [str(v) for v in views], n=1)
                    hint = f"; did you mean '{close[0]}'?" if close else (
                        f"; defined views: {', '.join(map(str, views))}" if views else "; 'views' is empty")
                    raise ConfigError(
                        f"tables.{t.name}.columns.{c.view}",
                        f"view '{c.view}' is not defined under 'views'{hint}",
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
        for t in self.tables.values():
            if t.task != task:
                continue
            try:
                return t, t.column(view), t.row(model)
            except KeyError:
                continue
        raise ConfigError("tables", f"no table trains task={task} view={view} model={model}")

    def job_settings(self, task: str, view: str, model: str, seed: int) -> str:
        """Canonical JSON (sorted keys) of everything that determines one train job's result."""
        t, c, r = self.find(task, view, model)
        return json.dumps(dict(json.loads(_settings(t, c, r)), seed=int(seed)), sort_keys=True)


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
    model = merge(merge(t.model, c.model), r.model)
    optim = merge(merge(t.optim, c.optim), r.optim)
    return json.dumps(
        {"task": t.task, "view": c.view, "preset": preset, "model": model, "optim": optim},
        sort_keys=True,
    )


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
