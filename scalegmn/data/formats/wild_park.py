"""CNN Wild Park (Neural Graphs, docs/datasets.md §5): one Ray checkpoint per file.

Layout: ``<root>/<trial dir>/<checkpoint dir>/checkpoint.pt`` (a Ray trial per training run,
one checkpoint folder per saved epoch) plus Neural Graphs' split JSON ``cnn_park_splits.json``
(``{split: {"path": [...], "score": [...], "step": [...]}}``).

Each ``checkpoint.pt`` is a ``torch.save`` dict: ``model`` (state dict ``layers.{i}.weight``
``[C_{i+1}, C_i, k, k]``, ``layers.{i}.bias``, ``fc.weight`` ``[n_classes, C_last]``,
``fc.bias``), ``optimizer``, ``config`` (an OmegaConf ``DictConfig`` of the generator's
``CNNConfig``: ``n_layers``, ``n_classes``, ``channels`` with the input's 3 first,
``kernel_size``, ``stride``, ``padding``, ``residual``, ``activation``) and Ray's trainable
state (``iteration``, ``last_result`` whose ``"test/acc"`` is the score).

Reading it safely: the pickle names classes of ``omegaconf``, of the generator's module
``create_random_cnns`` (absent from every public repository) and possibly of Ray. The
:class:`SafeUnpickler` never imports any of them: tensors, storages and a few builtins come
from torch's own weights-only allow-list, every other global becomes an inert
:class:`Stub` that only records its constructor arguments and pickled state. Nothing in the
file can run code (no ``__reduce__`` of a stub calls anything), and ``omegaconf`` is not
needed: :func:`config_values` unwraps the stubs' ``_content``/``_val`` state into plain
Python values.

The writer emits the same structure (the same global names, ``NEWOBJ`` + ``BUILD`` as
protocol 2 pickles them) without those packages either, so the stand-in zoo is byte-for-byte
the format the reader meets in the real archive.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

try:  # private, so guarded: the allow-list torch's own weights_only loader uses
    from torch._weights_only_unpickler import _get_allowed_globals
except ImportError:  # pragma: no cover - another torch
    _get_allowed_globals = None

from scalegmn.atomic import atomic_write
from scalegmn.data.formats.statedict import tensors_from_state_dict
from scalegmn.data.formats.torchfile import _diagnose
from scalegmn.errors import DataError
from scalegmn.weightspace.network import Network, NetworkSpec

FILE_NAME = "checkpoint.pt"
GLOB = f"**/{FILE_NAME}"
SPLITS_FILE = "cnn_park_splits.json"
SCORE_KEY = "test/acc"
SPLIT_NAMES = ("train", "val", "test")
#: activation names of the generator -> ours ("none" is the identity)
ACTIVATION_NAMES = {"relu": "relu", "gelu": "gelu", "tanh": "tanh", "sigmoid": "sigmoid",
                    "leaky_relu": "leaky_relu", "none": "identity", "identity": "identity"}
_ACT_BACK = {"identity": "none"}

# ---------------------------------------------------------------------------------------------
# the safe unpickler


class Stub:
    """An object of a class the unpickler refused to import: inert, it only records what the
    pickle gave it (``_stub_args`` to its constructor, ``_stub_state`` / ``__dict__`` from BUILD)."""

    _stub_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._stub_args = args

    def __setstate__(self, state: Any) -> None:
        """Keep a dict state as attributes (as the default would), anything else as ``_stub_state``."""
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict, slots) as pickle writes them
        if isinstance(state, dict):
            self.__dict__.update({str(k): v for k, v in state.items()})
        else:
            self._stub_state = state

    def __repr__(self) -> str:
        return f"<stub {self._stub_name}>"


_STUBS: dict[str, type] = {}


def stub_class(module: str, name: str) -> type:
    """The (cached) inert stand-in class for global ``module.name``."""
    key = f"{module}.{name}"
    if key not in _STUBS:
        _STUBS[key] = type(name.rsplit(".", 1)[-1], (Stub,), {"_stub_name": key, "__module__": "stub." + module})
    return _STUBS[key]


def _torch_allowed() -> dict[str, Any]:
    """Torch's weights-only allow-list (tensors, storages, dtypes, OrderedDict, ...)."""
    if _get_allowed_globals is not None:
        try:
            return dict(_get_allowed_globals())
        except Exception:  # noqa: BLE001 - a private API changed: fall back to the minimum below
            pass
    return {"collections.OrderedDict": collections.OrderedDict,
            "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": torch._utils._rebuild_parameter}


_ALLOWED = _torch_allowed()
# plain data types only (a pickled class reference to them is harmless); nothing callable with effects
_BUILTINS = {t.__name__: t for t in (set, frozenset, complex, slice, bytearray, str, int, float, bool, dict, list,
                                     tuple, bytes)}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that imports nothing: torch's allow-list, a few builtins, else a :class:`Stub`."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global, or an inert stub class named after it."""
        key = f"{module}.{name}"
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module == "builtins" and name in _BUILTINS:
            return _BUILTINS[name]
        if module == "copyreg" and name == "_reconstructor":
            return _reconstructor
        return stub_class(module, name)


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    """``copyreg._reconstructor`` of protocol 0/1 pickles, restricted to stub classes."""
    if not (isinstance(cls, type) and issubclass(cls, Stub)):
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return cls()


class _SafePickleModule:
    """What ``torch.load(pickle_module=...)`` needs: ``Unpickler`` and ``load``."""

    Unpickler = SafeUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        """Unpickle ``file`` with :class:`SafeUnpickler` (torch's legacy format reads magic numbers this way)."""
        return SafeUnpickler(file, **kwargs).load()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load one ``checkpoint.pt`` onto the CPU without importing any class it names.

    Raises:
        DataError: missing, empty, truncated or corrupt file, or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (check the dataset root and re-run the download)")
    if path.stat().st_size == 0:
        raise DataError(path, "not a readable torch file (truncated or corrupt?): the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_SafePickleModule)
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
        raise DataError(path, f"not a readable torch file (truncated or corrupt?): {_diagnose(path, err)}") from None
    if not isinstance(obj, Mapping):
        raise DataError(path, f"expected a checkpoint dict with 'model' and 'config', found a {type(obj).__name__}")
    return dict(obj)


def config_values(obj: Any, _depth: int = 0) -> Any:
    """Plain Python values of an (unpickled, stubbed) OmegaConf config: ``DictConfig`` ->
    dict, ``ListConfig`` -> list, value nodes -> their ``_val``; plain containers pass through."""
    if _depth > 50:
        raise ValueError("config nested too deeply")
    if isinstance(obj, Stub):
        d = obj.__dict__
        if "_content" in d:
            return config_values(d["_content"], _depth + 1)
        if "_val" in d:
            return config_values(d["_val"], _depth + 1)
        if "value" in d or "_value_" in d:  # an enum member
            return d.get("_value_", d.get("value"))
        return obj
    if isinstance(obj, Mapping):
        return {str(k): config_values(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [config_values(v, _depth + 1) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------
# config -> NetworkSpec


def _int(path: Path, cfg: Mapping, key: str) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise DataError(path, f"config key '{key}' is {v!r}, expected an integer")
    return v


def _per_layer(path: Path, cfg: Mapping, key: str, n: int, default: Any) -> list:
    v = cfg.get(key, default)
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return [v] * n
    if not isinstance(v, list) or len(v) != n:
        raise DataError(path, f"config key '{key}' is {v!r}, expected one value or a list of {n} (one per conv layer)")
    return v


def spec_from_config(path: str | Path, cfg: Mapping[str, Any]) -> NetworkSpec:
    """The architecture a (plain-valued) ``CNNConfig`` describes: conv layers ``channels[i] ->
    channels[i+1]`` with padding ``k // 2``, each with its activation, then GAP and ``fc``."""
    path = Path(path)
    if not isinstance(cfg, Mapping):
        raise DataError(path, f"'config' is a {type(cfg).__name__}, expected an OmegaConf CNNConfig (a mapping)")
    channels = cfg.get("channels")
    if not isinstance(channels, list) or len(channels) < 2 or not all(
            isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in channels):
        raise DataError(path, f"config key 'channels' is {channels!r}, expected positive integers, input's first")
    n_conv = len(channels) - 1
    if "n_layers" in cfg and _int(path, cfg, "n_layers") != n_conv:
        raise DataError(path, f"config n_layers = {cfg['n_layers']} but channels {channels} give {n_conv} conv layers")
    n_classes = _int(path, cfg, "n_classes")
    kernels = sorted(set(_per_layer(path, cfg, "kernel_size", n_conv, None)))
    if len(kernels) != 1 or not isinstance(kernels[0], int) or kernels[0] < 1:
        raise DataError(path, f"config kernel_size {cfg.get('kernel_size')!r}: one odd size per network is supported")
    k = kernels[0]
    stride = cfg.get("stride", 1)
    if stride != 1 and stride != [1] * n_conv:
        raise DataError(path, f"config stride {stride!r}: CNN Wild Park networks use stride 1")
    padding = cfg.get("padding", k // 2)
    if isinstance(padding, list):
        padding = sorted(set(padding))[0] if len(set(padding)) == 1 else None
    if padding in (None, "same"):
        padding = k // 2
    acts = []
    for a in _per_layer(path, cfg, "activation", n_conv, "relu"):
        if str(a).lower() not in ACTIVATION_NAMES:
            raise DataError(path, f"config activation {a!r}: use one of {sorted(ACTIVATION_NAMES)}")
        acts.append(ACTIVATION_NAMES[str(a).lower()])
    residual = [int(j) for j in _per_layer(path, cfg, "residual", n_conv, -1)]
    try:
        return NetworkSpec(
            (*channels, n_classes), (*acts, "identity"), layer_kinds=("conv",) * n_conv + ("linear",),
            kernel_size=(k, k), conv_stride=1, conv_padding=int(padding), residual=(*residual, -1))
    except ValueError as err:
        raise DataError(path, f"config describes no valid network: {err}") from None


def config_from_spec(spec: NetworkSpec) -> dict[str, Any]:
    """The ``CNNConfig`` fields of ``spec`` (inverse of :func:`spec_from_config`)."""
    n_conv = spec.n_layers - 1
    return {
        "n_layers": n_conv,
        "n_classes": spec.layout[-1],
        "channels": list(spec.layout[:-1]),
        "kernel_size": spec.kernel_size[0],
        "stride": spec.conv_stride,
        "padding": spec.conv_padding,
        "residual": list(spec.residual[:-1]) if spec.residual else [-1] * n_conv,
        "activation": [_ACT_BACK.get(a, a) for a in spec.activations[:-1]],
    }


def key_pairs(n_conv: int) -> tuple[tuple[str, str], ...]:
    """State-dict keys per layer: ``layers.{i}.weight/bias``, then ``fc.weight/bias``."""
    return (*((f"layers.{i}.weight", f"layers.{i}.bias") for i in range(n_conv)), ("fc.weight", "fc.bias"))


# ---------------------------------------------------------------------------------------------
# reading


def list_files(root: str | Path) -> list[Path]:
    """Every ``checkpoint.pt`` under ``root`` (any depth; hidden parts skipped), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a directory; point to the extracted CNN Wild Park folder")
    return sorted(p for p in root.glob(GLOB)
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def run_of(path: str | Path) -> str:
    """The run (Ray trial dir) of a checkpoint: the checkpoint file's grandparent folder's name."""
    return Path(path).parent.parent.name


def split_key(path: str | Path) -> str:
    """``<trial dir>/<checkpoint dir>/checkpoint.pt``: how a split file's path is matched to a file
    (the split file's paths are relative to a folder that differs between machines)."""
    return "/".join(Path(str(path).replace("\\", "/")).parts[-3:])


def _number(path: Path, value: Any, what: str) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(path, f"{what} is {value!r}, expected a number")
    return float(value)


def read_network(path: str | Path) -> Network:
    """Read one checkpoint: the network, ``target`` = ``last_result["test/acc"]``, and ``meta``
    ``{"run": trial dir, "step": iteration, "relpath": trial/checkpoint/checkpoint.pt}``."""
    path = Path(path)
    ck = load_checkpoint(path)
    for key in ("model", "config"):
        if key not in ck:
            raise DataError(path, f"no '{key}' entry (found {sorted(map(str, ck))}); is this a CNN Wild Park checkpoint?")
    try:
        cfg = config_values(ck["config"])
    except ValueError as err:
        raise DataError(path, f"unreadable 'config': {err}") from None
    spec = spec_from_config(path, cfg)
    sd = ck["model"]
    if not isinstance(sd, Mapping):
        raise DataError(path, f"'model' is a {type(sd).__name__}, expected a state dict")
    weights, biases = tensors_from_state_dict(path, sd, spec, key_pairs(spec.n_layers - 1))
    result = ck.get("last_result")
    if not isinstance(result, Mapping) or SCORE_KEY not in result:
        raise DataError(path, f"no last_result['{SCORE_KEY}'] (the score); is the checkpoint from a finished Ray step?")
    score = _number(path, result[SCORE_KEY], f"last_result['{SCORE_KEY}']")
    step = ck.get("iteration", result.get("training_iteration", -1))
    step = int(_number(path, step, "iteration"))
    return Network(spec, weights, biases, source=str(path), target=score,
                   meta={"run": run_of(path), "step": step, "relpath": split_key(path)})


# ---------------------------------------------------------------------------------------------
# writing (the stand-in zoo and the tests): the same pickle, without omegaconf or the generator


@dataclass(frozen=True)
class GlobalName:
    """A reference to global ``module.name`` written into a pickle without importing it."""

    module: str
    name: str


@dataclass(eq=False)
class PickledObject:
    """An object of class ``cls`` pickled as protocol 2 does: ``NEWOBJ(cls, args)`` then ``BUILD(state)``."""

    cls: GlobalName
    state: Any = None
    args: tuple = ()


class _Pickler(pickle._Pickler):  # the Python pickler: its dispatch table takes our two types
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_global_name(self, obj: GlobalName) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def _save_object(self, obj: PickledObject) -> None:
        self.save(obj.cls)
        self.save(tuple(obj.args))
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)

    dispatch[GlobalName] = _save_global_name
    dispatch[PickledObject] = _save_object


class _WriterPickleModule:
    Pickler = _Pickler


_OMEGA = "omegaconf"
CNN_CONFIG = GlobalName("create_random_cnns", "CNNConfig")


def _node_metadata(key: Any) -> PickledObject:
    return PickledObject(GlobalName(f"{_OMEGA}.base", "Metadata"), {
        "ref_type": GlobalName("typing", "Any"), "object_type": None, "optional": True, "key": key,
        "flags": {}, "flags_root": False, "resolver_cache": {}})


def omegaconf_config(values: Mapping[str, Any], object_type: GlobalName = CNN_CONFIG) -> PickledObject:
    """A structured OmegaConf ``DictConfig`` of ``values`` as the generator pickles it: value
    nodes under ``_content``, ``ListConfig`` for lists, ``object_type`` its dataclass."""
    root = PickledObject(GlobalName(f"{_OMEGA}.dictconfig", "DictConfig"))

    def node(key: Any, value: Any, parent: PickledObject) -> PickledObject:
        if isinstance(value, (list, tuple)):
            lst = PickledObject(GlobalName(f"{_OMEGA}.listconfig", "ListConfig"))
            meta = _node_metadata(key)
            meta.state = {**meta.state, "element_type": GlobalName("typing", "Any")}
            lst.state = {"_metadata": meta, "_parent": parent, "_flags_cache": None,
                         "_content": [node(i, v, lst) for i, v in enumerate(value)]}
            return lst
        kind = {bool: "BooleanNode", int: "IntegerNode", float: "FloatNode", str: "StringNode"}.get(type(value), "AnyNode")
        return PickledObject(GlobalName(f"{_OMEGA}.nodes", kind),
                             {"_metadata": _node_metadata(key), "_parent": parent, "_flags_cache": None, "_val": value})

    meta = PickledObject(GlobalName(f"{_OMEGA}.base", "ContainerMetadata"), {
        "ref_type": GlobalName("typing", "Any"), "object_type": object_type, "optional": True, "key": None,
        "flags": {}, "flags_root": False, "resolver_cache": {}, "key_type": GlobalName("builtins", "str"),
        "element_type": GlobalName("typing", "Any")})
    root.state = {"_metadata": meta, "_parent": None, "_flags_cache": None,
                  "_content": {k: node(k, v, root) for k, v in values.items()}}
    return root


def checkpoint_dict(net: Network, *, score: float, iteration: int, optimizer: Mapping[str, Any] | None = None,
                    extra_result: Mapping[str, float] | None = None, trial_id: str = "") -> dict[str, Any]:
    """The dict a Wild Park ``checkpoint.pt`` holds for one network (see the module docstring)."""
    if tuple(net.batch_shape) != ():
        raise ValueError(f"checkpoint_dict() writes one network, got a batch of {tuple(net.batch_shape)}")
    spec = net.spec
    if not (spec.is_cnn and spec.layer_kinds[-1] == "linear" and spec.layer_kinds.count("linear") == 1):
        raise ValueError(f"a Wild Park network is conv layers then one linear layer, got {spec.layer_kinds}")
    sd: dict[str, torch.Tensor] = {}
    for (wk, bk), w, b in zip(key_pairs(spec.n_layers - 1), net.weights, net.biases, strict=True):
        sd[wk] = w.detach().to("cpu", torch.float32).clone(memory_format=torch.contiguous_format)
        sd[bk] = b.detach().to("cpu", torch.float32).clone(memory_format=torch.contiguous_format)
    result = {SCORE_KEY: float(score), "training_iteration": int(iteration), **(extra_result or {})}
    return {
        "model": sd,
        "optimizer": dict(optimizer or {"state": {}, "param_groups": []}),
        "config": omegaconf_config(config_from_spec(spec)),
        "iteration": int(iteration),
        "timesteps_total": None,
        "time_total": 0.0,
        "episodes_total": None,
        "last_result": {**result, "trial_id": trial_id, "done": False},
        "ray_version": "2.9.0",
    }


def write_checkpoint(path: str | Path, ck: Mapping[str, Any]) -> Path:
    """``torch.save`` a checkpoint dict (protocol 2, as Ray/torch write it) atomically."""
    buf = io.BytesIO()
    torch.save(dict(ck), buf, pickle_module=_WriterPickleModule, pickle_protocol=2)
    with atomic_write(path) as tmp:
        tmp.write_bytes(buf.getvalue())
    return Path(path)


def write_network(root: str | Path, net: Network, *, run: str, checkpoint: str, score: float,
                  iteration: int, **kwargs: Any) -> Path:
    """Write ``root/<run>/<checkpoint>/checkpoint.pt``; returns the path."""
    path = Path(root) / run / checkpoint / FILE_NAME
    return write_checkpoint(path, checkpoint_dict(net, score=score, iteration=iteration, trial_id=run, **kwargs))


# ---------------------------------------------------------------------------------------------
# the split file


@dataclass
class SplitEntry:
    """One split of the split file: parallel lists of paths, scores and steps."""

    path: list[str] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    step: list[int] = field(default_factory=list)


def read_splits(path: str | Path) -> dict[str, SplitEntry]:
    """Neural Graphs' ``{split: {"path": [...], "score": [...], "step": [...]}}`` (DataError naming the file)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise DataError(path, f"not a readable split JSON ({' '.join(str(err).split())})") from None
    if not isinstance(raw, Mapping) or not raw:
        raise DataError(path, "expected {split: {\"path\": [...], \"score\": [...], \"step\": [...]}}")
    out = {}
    for name, entry in raw.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), list):
            raise DataError(path, f"split '{name}' has no 'path' list")
        paths = [str(p) for p in entry["path"]]
        for key in ("score", "step"):
            if key in entry and (not isinstance(entry[key], list) or len(entry[key]) != len(paths)):
                raise DataError(path, f"split '{name}': '{key}' must be a list as long as 'path' ({len(paths)})")
        out[str(name)] = SplitEntry(paths, [float(s) for s in entry.get("score", [])],
                                    [int(s) for s in entry.get("step", [])])
    return out


def write_splits(path: str | Path, splits: Mapping[str, SplitEntry]) -> Path:
    """Write the split JSON (atomically)."""
    body = {k: {"path": list(v.path), "score": list(v.score), "step": list(v.step)} for k, v in splits.items()}
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(body))
    return Path(path)
