"""The one engine that validates ``config.yaml``: frozen dataclasses whose fields carry their doc,
range and allowed values.

Standard library only (the Snakefile uses it at parse time). A config section is a
``@dataclass(frozen=True)`` whose fields are declared with :func:`setting`; the field's type hint
(read with :func:`typing.get_type_hints`, never ``eval``) and its metadata are the single source of
the key's type, default, range, allowed values and documentation. Every problem raises
:class:`~scalegmn.errors.ConfigError` naming the dotted key, in one line, with the key meant when
the key is misspelt::

    config key 'tables.table1.colums': unknown key; did you mean 'columns'?

Adding a section is a dataclass of :func:`setting` fields plus one :func:`build` call (or a
:class:`Section`, which validates itself when constructed and can be overridden key by key).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from scalegmn.errors import ConfigError

_NONE = type(None)


def setting(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    choices: Iterable[Any] | None = None,
    min: float | None = None,  # noqa: A002 - the natural name in a schema
    max: float | None = None,  # noqa: A002
    max_open: bool = False,
    check: Callable[[Any], str | None] | None = None,
    keys_of: type | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A config key: a dataclass field with its documentation and constraints.

    Args:
        default: the value when the key is absent (none: the key is required).
        doc: one sentence for users: what the key does and when to change it.
        choices: the allowed values, if it is a choice.
        min: the smallest allowed number (inclusive).
        max: the largest allowed number (inclusive, exclusive with ``max_open``).
        max_open: ``max`` itself is not allowed.
        check: further rule: returns what is wrong with a value, or None.
        keys_of: the value is a mapping of overrides of this section's keys (documentation).
        default_factory: as :func:`dataclasses.field`.
    """
    meta = {"doc": doc, "choices": tuple(choices) if choices is not None else None,
            "min": min, "max": max, "max_open": max_open, "check": check,
            "keys_of": keys_of}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def derived(default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A field that is not a key of its mapping (a name taken from the enclosing mapping's key)."""
    return dataclasses.field(default=default, metadata={"config": False}, **kw)


def join(where: str, key: Any) -> str:
    """The dotted key ``where.key`` (``key`` alone at the top level)."""
    return f"{where}.{key}" if where else str(key)


def suggest(name: str, allowed: Iterable[str], what: str = "key") -> str:
    """``unknown key; did you mean 'x'?`` (or the allowed names when none is close)."""
    allowed = [str(a) for a in allowed]
    close = difflib.get_close_matches(str(name), allowed, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"allowed {what}s: {', '.join(allowed)}"
    return f"unknown {what}; {hint}"


def check_keys(mapping: Any, where: str, allowed: Iterable[str], required: Iterable[str] = ()) -> Mapping[str, Any]:
    """``mapping`` (``{}`` for None) after checking that it is a mapping of ``allowed`` keys that
    holds every ``required`` one."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(where, f"expected a mapping, got {type(mapping).__name__} {mapping!r}")
    allowed = tuple(allowed)
    for key in mapping:
        if key not in allowed:
            raise ConfigError(join(where, key), suggest(str(key), allowed))
    for key in required:
        if key not in mapping:
            raise ConfigError(join(where, key), "missing; add it")
    return mapping


def choice(value: Any, where: str, allowed: Iterable[Any]) -> Any:
    """``value`` if it is one of ``allowed``, else a ConfigError listing them."""
    allowed = tuple(allowed)
    if not isinstance(value, bool) and value in allowed:
        return value
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(where, f"{value!r} is not one of {', '.join(map(str, allowed))}{hint}")


def config_fields(cls: type) -> tuple[dataclasses.Field, ...]:
    """The fields of ``cls`` that are keys of its mapping."""
    return tuple(f for f in dataclasses.fields(cls) if f.metadata.get("config", True))


def keys(cls: type) -> tuple[str, ...]:
    """The keys of the mapping that :func:`build` turns into a ``cls``."""
    return tuple(f.name for f in config_fields(cls))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _types(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _range(value: float, meta: Mapping[str, Any], optional: bool, real: bool) -> str | None:
    lo, hi = meta.get("min"), meta.get("max")
    if real and not math.isfinite(value):
        return f"{value} must be a finite number"
    if hi is not None:
        above = value >= hi if meta.get("max_open") else value > hi
        if (lo is not None and value < lo) or above:
            return f"{value} must be in [{lo:g}, {hi:g}{')' if meta.get('max_open') else ']'}"
        return None
    if lo is not None and value < lo:
        if real:
            return f"{value} must be a finite number >= {lo:g}"
        return f"{value} must be at least {lo:g}" + (" (or null)" if optional else "")
    return None


def check_value(value: Any, hint: Any, meta: Mapping[str, Any], where: str) -> Any:
    """``value`` checked against a type hint and a :func:`setting`'s metadata; ints become floats
    where the hint is float. Nested dataclass hints are built with :func:`build`."""
    allowed = _types(hint)
    optional = _NONE in allowed
    if value is None:
        if optional:
            return None
        raise ConfigError(where, "must not be empty")
    section = next((t for t in allowed if dataclasses.is_dataclass(t)), None)
    if section is not None and isinstance(value, Mapping):
        return build(section, value, where)
    if meta.get("choices") is not None:
        value = choice(value, where, meta["choices"])
    elif bool in allowed:
        if not isinstance(value, bool):
            raise ConfigError(where, f"{value!r} must be true or false")
    elif int in allowed and isinstance(value, int) and not isinstance(value, bool):
        pass
    elif float in allowed and isinstance(value, int | float) and not isinstance(value, bool):
        value = float(value)
    elif str in allowed and isinstance(value, str):
        if not value:
            raise ConfigError(where, "must not be empty")
    elif any(typing.get_origin(t) is tuple for t in allowed) and isinstance(value, list | tuple):
        value = tuple(value)  # a YAML list; its items are left to the key's `check`
    else:
        names = " or ".join("a list" if typing.get_origin(t) is tuple else getattr(t, "__name__", str(t))
                            for t in allowed if t is not _NONE)
        raise ConfigError(where, f"{value!r} must be {names}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        problem = _range(value, meta, optional, real=float in allowed and int not in allowed)
        if problem:
            raise ConfigError(where, problem)
    if meta.get("check") is not None:
        problem = meta["check"](value)
        if problem:
            raise ConfigError(where, problem)
    return value


def check(cls: type, name: str, value: Any, where: str) -> Any:
    """``value`` checked as field ``name`` of ``cls`` (``where`` is its dotted key)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return check_value(value, _hints(cls)[name], f.metadata, where)


def build(cls: type, mapping: Any, where: str, **fixed: Any) -> Any:
    """A ``cls`` from a config mapping: unknown keys, types and ranges checked, absent keys take
    their defaults, missing required keys are named. ``fixed`` sets the :func:`derived` fields and
    the keys that the caller parsed itself."""
    mapping = check_keys(mapping, where, keys(cls))
    values = dict(fixed)
    for f in config_fields(cls):
        if f.name in fixed:  # parsed by the caller (a key with rules of its own)
            continue
        if f.name in mapping:
            values[f.name] = check(cls, f.name, mapping[f.name], join(where, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(join(where, f.name), "missing; add it")
    return cls(**values)


def validate(obj: Any, where: str) -> None:
    """Check every config field of a constructed dataclass (its ``__post_init__`` calls this), so
    that a value built in code obeys the same rules as one read from config.yaml."""
    hints = _hints(type(obj))
    for f in config_fields(type(obj)):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue
        check_value(value, hints[f.name], f.metadata, join(where, f.name))


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in mapping.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def override(obj: Any, mapping: Mapping[str, Any], section: str) -> Any:
    """A copy of ``obj`` with the keys of ``mapping`` replaced: dotted (``"a.b"``) or nested keys;
    a leading ``section.`` is accepted. Errors name ``section.<key>``."""
    cls = type(obj)
    known = keys(cls)
    changes = {}
    for key, value in _flatten(mapping).items():
        name = key.removeprefix(f"{section}.")
        if name not in known:
            raise ConfigError(join(section, name), suggest(name, known))
        changes[name] = check(cls, name, value, join(section, name))
    return dataclasses.replace(obj, **changes)


class Section:
    """Mixin of a config section that is also built in code (model presets): construction checks
    every field (:func:`validate`), :meth:`override` applies config overrides. ``_section`` is the
    dotted key that errors name (``model``, ``optim``)."""

    _section = ""

    def __post_init__(self) -> None:
        validate(self, self._section)

    def override(self, mapping: Mapping[str, Any]) -> Any:
        """A copy with the given keys replaced (see :func:`override`)."""
        return override(self, mapping, self._section)

    def to_dict(self) -> dict[str, Any]:
        """The section as plain JSON-able values."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class KeyDoc:
    """One documented key of a section: what ``describe`` yields."""

    key: str
    type: str
    default: Any
    doc: str
    choices: tuple[Any, ...] | None


def _type_name(hint: Any) -> str:
    return " | ".join("null" if t is _NONE else getattr(t, "__name__", str(t).replace("typing.", ""))
                      for t in _types(hint))


def describe(cls: type, prefix: str = "") -> Iterator[KeyDoc]:
    """Every key of section ``cls`` (nested sections expanded) with its type, default and doc."""
    hints = _hints(cls)
    for f in config_fields(cls):
        hint = hints[f.name]
        section = f.metadata.get("keys_of") or next((t for t in _types(hint) if dataclasses.is_dataclass(t)), None)
        key = join(prefix, f.name)
        if section is not None:
            yield from describe(section, key)
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        yield KeyDoc(key, _type_name(hint), default, f.metadata.get("doc", ""), f.metadata.get("choices"))
