"""The conda environments (envs/): conda-forge only, PyTorch's CPU or CUDA build, every core
dependency of pyproject.toml, no relative `-e ../` install; the train rule takes the CUDA one
when `training.conda_env: cuda` (set by profiles/slurm). Solving them needs a conda channel,
which this machine cannot reach: README, "Conda environments", says what is verified."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from scalegmn.train.experiments import TrainingConfig

from .test_rerun import REPO

#: pip name -> conda-forge name, for the packages whose names differ.
CONDA_NAMES = {"torch": "pytorch", "torch-geometric": "pytorch_geometric", "matplotlib": "matplotlib-base"}
DRIVER_ONLY = {"snakemake"}  # the driver's; jobs unpickle with the driver's snakemake on sys.path


def _env(name: str) -> dict:
    return yaml.safe_load((REPO / "envs" / f"scalegmn-{name}.yaml").read_text())


def _names(env: dict) -> dict[str, str]:
    out = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), f"{env['name']}: no pip section: every package from conda-forge ({dep})"
        name = re.split(r"[<>=! ]", dep, maxsplit=1)[0]
        out[name] = dep
    return out


@pytest.mark.parametrize(("name", "build"), [("cpu", "=cpu*"), ("cuda", "=cuda*")])
def test_env_is_conda_forge_with_the_right_pytorch_build(name, build):
    env = _env(name)
    assert env["channels"] == ["conda-forge", "nodefaults"]  # no pytorch/nvidia channel (no builds after 2.5)
    deps = _names(env)
    assert deps["pytorch"].endswith(build) and "cpuonly" not in deps and "pytorch-cuda" not in deps
    assert not any(d.startswith("-e") for d in deps)  # the package comes from the repository (PYTHONPATH)


def test_envs_hold_every_core_dependency_of_the_package():
    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for name in ("cpu", "cuda"):
        deps = _names(_env(name))
        for req in wanted:
            pip_name = re.split(r"[<>=! ]", req, maxsplit=1)[0]
            if pip_name in DRIVER_ONLY:
                continue
            assert CONDA_NAMES.get(pip_name, pip_name) in deps, f"envs/scalegmn-{name}.yaml lacks {pip_name}"
    assert _names(_env("cpu")).keys() == _names(_env("cuda")).keys()


def test_the_train_rule_takes_the_cuda_env_when_configured():
    rule = (REPO / "rules" / "train.smk").read_text()
    assert 'f"../envs/scalegmn-{EXPERIMENTS.training.conda_env}.yaml"' in rule
    assert TrainingConfig.from_mapping("training", {}).conda_env == "cpu"
    assert TrainingConfig.from_mapping("training", {"conda_env": "cuda"}).conda_env == "cuda"
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "profile.yaml").read_text())
    assert "training={conda_env: cuda}" in profile["config"]
