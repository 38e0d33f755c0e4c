"""`source: download` end to end through Snakemake, against a local HTTP server (no external host)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from scalegmn.weightspace.network import Network, dws_siren_spec, unstack
from tests.workflow.faults_data_helpers import serve_folder

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

pytestmark = pytest.mark.slow


def mnist_zip(tmp: Path) -> bytes:
    """A DWS-style zip: mnist-inrs/ with 14 INRs, a __MACOSX decoy, inside a folder zip."""
    from scalegmn.data.formats import mnist_inr

    root = tmp / "src" / "mnist-inrs"
    spec = dws_siren_spec()
    g = torch.Generator().manual_seed(0)
    batch = Network(spec, tuple(torch.randn(14, *spec.weight_shape(i), generator=g) * 0.1 for i in range(3)),
                    tuple(torch.randn(14, *spec.bias_shape(i), generator=g) * 0.01 for i in range(3)))
    for i, net in enumerate(unstack(batch)):
        mnist_inr.write_network(root, net, split="training" if i < 10 else "testing", label=i % 10, image_id=i)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for p in sorted(root.rglob("*.pth")):
            z.write(p, p.relative_to(root.parent))
        z.writestr("__MACOSX/mnist-inrs/._x", b"junk")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:  # the whole-folder Dropbox zip holds zips
        z.writestr("mnist-inrs.zip", inner.getvalue())
    return outer.getvalue()


@pytest.fixture
def server(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "mnist-inrs.zip").write_bytes(mnist_zip(tmp_path))
    (site / "login.zip").write_bytes(b"<!DOCTYPE html><html>sign in</html>")
    with serve_folder(site) as url:
        yield url, site


def workflow(tmp_path: Path, url: str, sha: str | None) -> Path:
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "rules", "workflow_scripts", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name)
    config = {
        "datasets": {"mnist_inr": {"source": "download", "download": {"urls": [url], "sha256": sha, "retries": 1},
                                   "canonicalize": "phase"}},
        "views": {"mnist": {"dataset": "mnist_inr"}},
        "tables": {},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    return work


def run(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)


def test_download_extract_ingest_cache(server, tmp_path):
    from scalegmn.data.cache import load_split

    url, site = server
    sha = hashlib.sha256((site / "mnist-inrs.zip").read_bytes()).hexdigest()
    work = workflow(tmp_path, f"{url}/mnist-inrs.zip?dl=1", sha)
    proc = run(work, "data_all")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    raw = work / "results/data/mnist_inr/raw/mnist-inrs"
    assert len(list(raw.rglob("*.pth"))) == 14 and not list(raw.rglob("__MACOSX"))
    sizes = [load_split(work / f"results/cache/mnist/{s}.zarr").size for s in ("train", "val", "test")]
    assert sum(sizes) == 14 and sizes[2] == 4
    log = (work / "results/logs/download_dataset/mnist_inr.log").read_text()
    assert "downloaded" in log


def test_html_download_fails_cleanly(server, tmp_path):
    url, _ = server
    work = workflow(tmp_path, f"{url}/login.zip", None)
    proc = run(work, "data_all")
    assert proc.returncode != 0
    log = (work / "results/logs/download_dataset/mnist_inr.log").read_text()
    assert f"{url}/login.zip: the server sent an HTML page" in log
    leftovers = [p for p in (work / "results/data/mnist_inr").rglob("*")] if (work / "results/data/mnist_inr").exists() else []
    assert not [p for p in leftovers if p.is_file()], leftovers
