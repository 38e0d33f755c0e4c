"""Shared set-up of the data fault tests (tests/workflow/test_faults_*.py): a temporary copy of
the workflow, Snakemake runs without a SLURM probe, and small MNIST-INR folders on disk."""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
import yaml

from scalegmn.weightspace.network import Network, dws_siren_spec, unstack
from tests.workflow.test_data_dag import snakemake_env

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def copy_workflow(dest: Path, config: dict) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "rules", "workflow_scripts", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest / name)
    write_config(dest, config)
    return dest


def write_config(work: Path, config: dict) -> None:
    (work / "config.yaml").write_text(yaml.safe_dump({"views": {}, "tables": {}, **config}, sort_keys=False))


def smk(work: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`snakemake --cores 2 ARGS` in ``work``; ``.out`` is stdout and stderr together (the console)."""
    proc = subprocess.run([SNAKEMAKE, "--cores", "2", *args], cwd=work, env=snakemake_env(),
                          capture_output=True, text=True, timeout=timeout)
    proc.out = proc.stdout + proc.stderr
    return proc


def nothing_to_do(work: Path, target: str) -> bool:
    proc = smk(work, "-n", target)
    assert proc.returncode == 0, proc.out[-3000:]
    return "Nothing to be done" in proc.out


def write_mnist_folder(root: Path, n: int, seed: int = 0, corrupt: tuple[int, ...] = ()) -> list[Path]:
    """``n`` MNIST INRs in the DWS layout under ``root`` (the ``mnist-inrs`` folder); the files
    numbered in ``corrupt`` hold garbage instead. Returns every file, in write order."""
    from scalegmn.data.formats import mnist_inr

    spec = dws_siren_spec()
    g = torch.Generator().manual_seed(seed)
    batch = Network(spec, tuple(torch.randn(n, *spec.weight_shape(i), generator=g) * 0.1 for i in range(3)),
                    tuple(torch.randn(n, *spec.bias_shape(i), generator=g) * 0.01 for i in range(3)))
    files = []
    for i, net in enumerate(unstack(batch)):
        split = "training" if i < n - n // 4 else "testing"
        path = mnist_inr.write_network(root, net, split=split, label=i % 10, image_id=i)
        if i in corrupt:
            path.write_bytes(b"this is not a torch checkpoint")
        files.append(path)
    return files


@contextlib.contextmanager
def serve_folder(site: Path) -> Iterator[str]:
    """Serve ``site``'s files over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
