"""The one config schema (scalegmn.schema, PipelineConfig): one-line errors naming the dotted key,
ranges, choices and types from the fields' metadata; every key of the shipped config.yaml is in
the schema, documented, and the defaults the schema documents are the ones a config gets."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from scalegmn import schema
from scalegmn.errors import ConfigError
from scalegmn.execution import ExecutionConfig
from scalegmn.models.presets import ModelConfig, OptimConfig
from scalegmn.schema import setting
from scalegmn.train.experiments import PipelineConfig

REPO = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((REPO / "config.yaml").read_text())


@dataclass(frozen=True, kw_only=True)
class _Section:
    steps: int = setting(10, min=1, doc="steps")
    lr: float = setting(1e-3, min=0.0, doc="learning rate")
    rate: float = setting(0.0, min=0.0, max=1.0, max_open=True, doc="a fraction")
    mode: str = setting("fast", choices=("fast", "slow"), doc="speed")
    flag: bool = setting(False, doc="a switch")
    limit: int | None = setting(None, min=0, doc="optional")
    name: str = setting(doc="required")


@pytest.mark.parametrize(("mapping", "key", "words"), [
    ({"name": "x", "stpes": 3}, "sec.stpes", "unknown key; did you mean 'steps'?"),
    ({"name": "x", "zzz": 3}, "sec.zzz", "allowed keys: steps, lr"),
    ({"steps": 3}, "sec.name", "missing; add it"),
    ({"name": "x", "steps": -4}, "sec.steps", "-4 must be at least 1"),
    ({"name": "x", "steps": 0}, "sec.steps", "0 must be at least 1"),
    ({"name": "x", "steps": 2.5}, "sec.steps", "2.5 must be int"),
    ({"name": "x", "lr": -0.1}, "sec.lr", "-0.1 must be a finite number >= 0"),
    ({"name": "x", "lr": float("nan")}, "sec.lr", "finite"),
    ({"name": "x", "rate": 1}, "sec.rate", "must be in [0, 1)"),
    ({"name": "x", "mode": "fsat"}, "sec.mode", "did you mean 'fast'?"),
    ({"name": "x", "flag": "yes"}, "sec.flag", "true or false"),
    ({"name": "x", "limit": -1}, "sec.limit", "-1 must be at least 0 (or null)"),
    ({"name": ""}, "sec.name", "must not be empty"),
])
def test_engine_errors_are_one_line_naming_the_key(mapping, key, words):
    with pytest.raises(ConfigError) as err:
        schema.build(_Section, mapping, "sec")
    msg = str(err.value)
    assert err.value.key == key and words in msg and "\n" not in msg


def test_engine_builds_with_defaults_and_converts_ints_to_floats():
    s = schema.build(_Section, {"name": "x", "lr": 1, "limit": None}, "sec")
    assert s == _Section(name="x", lr=1.0) and isinstance(s.lr, float)
    assert schema.keys(_Section) == ("steps", "lr", "rate", "mode", "flag", "limit", "name")


def test_sections_check_themselves_and_overrides():
    with pytest.raises(ConfigError, match="config key 'optim.lr': -1.0 must be a finite number >= 0"):
        OptimConfig(lr=-1)
    with pytest.raises(ConfigError, match="config key 'model.d_hidd': unknown key; did you mean 'd_hid'"):
        ModelConfig().override({"d_hidd": 3})
    assert OptimConfig().override({"optim.max_steps": 5}).max_steps == 5


# --- the shipped config.yaml and the schema's documentation --------------------------------------

def _patterns() -> dict[str, schema.KeyDoc]:
    return {d.key: d for d in PipelineConfig.describe()}


def _matches(path: str, pattern: str) -> bool:
    regex = "\\.".join("[^.]+" if p.startswith("<") else re.escape(p) for p in pattern.split("."))
    return re.fullmatch(regex, path) is not None


def _unknown_keys(node, path: str, patterns) -> list[str]:
    """Key paths of ``node`` that no schema key matches (a leaf key may hold a mapping)."""
    if path and any(_matches(path, p) for p in patterns):
        return []
    if not isinstance(node, dict):
        return [path]
    if path and not any(_matches(path, ".".join(p.split(".")[: path.count(".") + 1])) for p in patterns):
        return [path]
    return [u for k, v in node.items() for u in _unknown_keys(v, schema.join(path, k), patterns)]


def test_every_key_of_the_shipped_config_is_in_the_schema_and_documented():
    patterns = _patterns()
    assert _unknown_keys(SHIPPED, "", patterns) == []
    assert _unknown_keys({"tables": {"t": {"rows": {"m": {"optim": {"lrr": 1}}}}}}, "", patterns) == [
        "tables.t.rows.m.optim.lrr"]
    assert all(d.doc for d in patterns.values()), [k for k, d in patterns.items() if not d.doc]
    for level in ("tables.<table>", "tables.<table>.columns.<view>", "tables.<table>.rows.<model>"):
        assert {f"{level}.execution.{k}" for k in schema.keys(ExecutionConfig)} <= set(patterns)
    PipelineConfig.from_mapping(SHIPPED)  # and its values are valid


def _resolved(config: PipelineConfig, key: str):
    """The value that ``config`` holds for the documented key (entries named as in SHIPPED)."""
    parts = key.split(".")
    if parts[0] in ("datasets", "views"):
        obj = getattr(config.data, parts[0])["mnist_inr" if parts[0] == "datasets" else "mnist"]
        rest = parts[2:]
    else:
        obj, rest = config.experiments.training, parts[1:]
    for p in rest:
        obj = getattr(obj, p)
    return obj


def test_the_documented_defaults_are_the_ones_a_config_gets():
    minimal = {"datasets": {"mnist_inr": {}}, "views": {"mnist": {"dataset": "mnist_inr"}},
               "training": {}, "tables": {}}
    config = PipelineConfig.from_mapping(minimal)
    checked = 0
    for d in PipelineConfig.describe():
        if d.key.startswith("tables.") or d.default in (None, (), dataclasses.MISSING) or ".local." in d.key:
            continue
        if d.key.startswith("views.") and d.key.endswith(".activation"):
            continue
        assert _resolved(config, d.key) == d.default, d.key
        checked += 1
    assert checked >= 10
    for section in (ModelConfig, OptimConfig, ExecutionConfig):  # table/column/row overrides start from these
        obj = section()
        for d in schema.describe(section):
            assert getattr(obj, d.key) == d.default, d.key


def test_a_misspelt_override_in_the_shipped_config_is_refused():
    bad = yaml.safe_load((REPO / "config.yaml").read_text())
    bad["tables"]["table2"]["rows"]["scalegmn_b"]["model"]["backward_epss"] = 1e-4
    with pytest.raises(ConfigError) as err:
        PipelineConfig.from_mapping(bad)
    assert err.value.key == "tables.table2.rows.scalegmn_b.model.backward_epss"
    assert "did you mean 'backward_eps'" in str(err.value)
