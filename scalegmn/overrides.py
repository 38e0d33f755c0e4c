"""Shrinking or changing a run from the command line, before config.yaml is validated.

Three tools, all applied to the config mapping Snakemake hands the Snakefile:

- **Typed ``--config`` values.** Snakemake parses a nested ``--config`` value with YAML's base
  loader, so ``--config 'tables={table1: {seeds: [0]}}'`` arrives as ``seeds: ['0']``.
  :func:`typed` re-reads every such string as YAML (``'0'`` → 0, ``'null'`` → None, ``'1e-3'`` →
  0.001); the config files are untouched.
- **Null removes an entry.** In ``datasets``, ``views``, ``tables`` and a table's ``columns`` and
  ``rows``, an entry set to null is dropped: ``--config 'tables={table1: {rows: {gmn: null}}}'``
  or the same in a ``--configfile`` overlay (dicts merge, so an overlay could not remove one).
- **Selections.** ``only: TABLE[:COLUMNS[:ROWS[:SEEDS]]]`` keeps the named tables and, within
  them, the named columns, rows and seeds (comma lists, ``*`` for all; several selectors as a
  list or joined with ``;``): ``--config only=table1:mnist:scalegmn,mlp:0``. ``run: quick`` keeps
  each table's first seed and caps training at 100 steps; ``run: paper`` drops the table-level
  ``model``/``optim`` overrides so every job trains with its paper preset (docs/usage.md).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml

from scalegmn.errors import ConfigError

#: The top-level keys this module consumes (they never reach the sections' schemas).
KEYS = ("only", "run")
RUN_MODES = ("default", "quick", "paper")
#: ``run: quick``: the training budget of every table (merged over its own ``optim``).
QUICK_OPTIM = {"epochs": None, "max_steps": 100, "eval_every_steps": 25}
QUICK_WARMUP = 10

DOCS = {
    "only": "keep only these tables / columns / rows / seeds: TABLE[:COLUMNS[:ROWS[:SEEDS]]], comma "
            "lists, * = all, several selectors as a list or joined with ';' (e.g. table1:mnist:scalegmn)",
    "run": "default = as configured; quick = each table's first seed and 100 training steps; paper = "
           "drop the table-level model/optim overrides so every job uses its paper preset",
}


def _retype(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _retype(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_retype(v) for v in value]
    if not isinstance(value, str):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str):  # YAML 1.1 reads 1e-3 as a string
        try:
            return float(parsed)
        except ValueError:
            return parsed
    return _retype(parsed) if isinstance(parsed, (dict, list)) else parsed


def typed(command_line: Mapping[str, Any]) -> dict[str, Any]:
    """The ``--config`` values with their strings read as YAML (numbers, booleans, null)."""
    return {k: _retype(v) for k, v in command_line.items()}


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` deep-merged into a copy of ``base`` (mappings merge, anything else replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _drop_nulls(entries: Any) -> Any:
    return {k: v for k, v in entries.items() if v is not None} if isinstance(entries, Mapping) else entries


def _names(text: str, allowed: list[Any], key: str, what: str) -> list[Any]:
    """The entries ``text`` names (comma list, ``*`` or empty = all), in config order."""
    text = text.strip()
    if text in ("", "*"):
        return list(allowed)
    wanted = [w.strip() for w in text.split(",") if w.strip()]
    lookup = {str(a): a for a in allowed}
    for w in wanted:
        if w not in lookup:
            raise ConfigError(key, f"{what} '{w}' is not in the table; choose from {', '.join(map(str, allowed))}")
    return [a for a in allowed if str(a) in wanted]


def _selectors(only: Any) -> list[str]:
    if isinstance(only, str):
        return [s for s in only.split(";") if s.strip()]
    if isinstance(only, list) and all(isinstance(s, str) for s in only):
        return only
    raise ConfigError("only", f"{only!r} must be TABLE[:COLUMNS[:ROWS[:SEEDS]]] or a list of them")


def select(config: Mapping[str, Any], only: Any) -> dict[str, Any]:
    """The config with only the tables, columns, rows and seeds ``only`` names (see module doc)."""
    tables = config.get("tables") or {}
    kept: dict[str, Any] = {}
    for selector in _selectors(only):
        parts = selector.strip().split(":")
        if len(parts) > 4:
            raise ConfigError("only", f"'{selector}' has {len(parts)} parts; use TABLE[:COLUMNS[:ROWS[:SEEDS]]]")
        parts += [""] * (4 - len(parts))
        for name in _names(parts[0], list(tables), "only", "table"):
            table = copy.deepcopy(kept.get(name) or tables[name])
            src = tables[name]
            table["columns"] = {c: src["columns"][c] for c in _names(parts[1], list(src.get("columns") or {}), "only", "column")}
            table["rows"] = {r: src["rows"][r] for r in _names(parts[2], list(src.get("rows") or {}), "only", "row")}
            table["seeds"] = _names(parts[3], list(src.get("seeds") or []), "only", "seed")
            kept[name] = table
    return {**config, "tables": kept}


def apply_run_mode(config: Mapping[str, Any], run: Any) -> dict[str, Any]:
    """The config under ``run: default | quick | paper`` (see module doc)."""
    if run not in RUN_MODES:
        raise ConfigError("run", f"{run!r} must be one of {', '.join(RUN_MODES)}")
    if run == "default":
        return dict(config)
    tables = {}
    for name, table in (config.get("tables") or {}).items():
        table = dict(table)
        if run == "quick":
            table["seeds"] = list(table.get("seeds") or [0])[:1]
            optim = {**(table.get("optim") or {}), **QUICK_OPTIM}
            optim["warmup_steps"] = min(int(optim.get("warmup_steps") or 0), QUICK_WARMUP)
            table["optim"] = optim
        else:
            table.pop("model", None)
            table.pop("optim", None)
        tables[name] = table
    return {**config, "tables": tables}


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config after null-removal, ``run`` and ``only``, without those two keys."""
    if not isinstance(config, Mapping):
        return config
    out = {k: v for k, v in config.items() if k not in KEYS}
    for section in ("datasets", "views", "tables"):
        if section in out:
            out[section] = _drop_nulls(out[section])
    if isinstance(out.get("tables"), Mapping):
        out["tables"] = {
            name: ({**t, **{k: _drop_nulls(t[k]) for k in ("columns", "rows") if k in t}} if isinstance(t, Mapping) else t)
            for name, t in out["tables"].items()
        }
    if config.get("only") is not None:
        out = select(out, config["only"])
    if config.get("run") is not None:
        out = apply_run_mode(out, config["run"])
    return out
