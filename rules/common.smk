# Functions only: the paths and params of the data stages, and the wildcard constraints.
# The DATA section of config.yaml was validated with the rest of the file in rules/startup.smk.
import functools
import hashlib
import json
import os

from scalegmn.data.acquire import folder_listing, local_path, local_root
from scalegmn.data.standins.sizes import builder_code
from scalegmn.logs import ReadableJson  # JSON params the report prints as key=value
from scalegmn.vocabulary import SPLITS, TASKS, alternatives  # TASKS: rules/train.smk

DATA = CONFIG.data


@functools.cache
def local_dataset_root(name, path):
    """The dataset root that `datasets.<name>.local.path` names (the archive, or the root folder
    found in the folder: the folder itself or one holding it); ConfigError when it is gone."""
    return str(local_root(name, path))


@functools.cache
def local_folder_listing(root):
    """Count, bytes and sha256 of the names, sizes and mtimes of a local folder's files."""
    return folder_listing(root)


# (A local path that is gone, moved or unmounted, stops the run at parse time, naming the
# user's path and its key: rules/startup.smk, scalegmn.data.config.check_local_paths.)


# Which rule makes results/data/{dataset}/raw depends on the dataset's source.
STANDIN_DATASETS = alternatives(n for n, d in DATA.datasets.items() if d.source == "standin")
EXTERNAL_DATASETS = alternatives(n for n, d in DATA.datasets.items() if d.source != "standin")
DOWNLOAD_DATASETS = alternatives(n for n, d in DATA.datasets.items() if d.source == "download")


wildcard_constraints:
    dataset=alternatives(DATA.datasets),
    view=alternatives(DATA.views),
    split=alternatives(SPLITS),


def package_code(folder, names=None):
    """Source files of ``scalegmn/<folder>`` (``names``, or every ``.py`` there), relative to the
    working directory where possible. Rules declare them as inputs: Snakemake does not track the
    modules that scripts import, so editing them must make the rule's outputs out of date."""
    pkg = os.path.join(workflow.basedir, "scalegmn", folder)
    if names is None:
        names = (
            sorted(f for f in os.listdir(pkg) if f.endswith(".py")) if os.path.isdir(pkg) else []
        )
    files = [os.path.join(pkg, f) for f in names]
    return [
        os.path.relpath(f) if f.startswith(os.getcwd() + os.sep) else f
        for f in files
        if os.path.exists(f)
    ]


def get_dataset_config(wildcards):
    return DATA.datasets[wildcards.dataset]


def get_standin_code(wildcards):
    """The stand-in package's modules that build this dataset's zoo, and only those: editing the
    CNN training code rebuilds no INR zoo."""
    ds = get_dataset_config(wildcards)
    return package_code("data/standins", builder_code(ds.name, ds.standin.size_arg()))


def get_acquire_params(wildcards):
    """Canonical JSON of the dataset's source settings (key order never matters). For a local
    folder it also names the root found in it, so a change of that root re-links it."""
    ds = get_dataset_config(wildcards)
    params = ds.acquire_params()
    if ds.source == "local" and os.path.isdir(local_path(ds.local_path)):
        params = json.dumps(
            {**json.loads(params), "root": local_dataset_root(ds.name, ds.local_path)},
            sort_keys=True,
        )
    return ReadableJson(params)


def get_extract_input(wildcards):
    """The downloaded files, or the local archive (a local folder is linked, not an input: its
    listing is a param of ingest_dataset instead)."""
    ds = get_dataset_config(wildcards)
    if ds.source == "download":
        return {"download": f"results/data/{ds.name}/download"}
    if ds.source == "local" and os.path.isfile(local_path(ds.local_path)):
        return {"archive": str(local_path(ds.local_path))}
    return {}


def get_ingest_params(wildcards):
    """What decides the weight table. A local folder is linked, not copied, so its content
    (names, sizes and mtimes of its files) is part of the params: repairing, adding or removing
    a file reruns ingest and everything after it."""
    ds = get_dataset_config(wildcards)
    body = {
        "dataset": ds.name,
        "fmt": ds.format,
        "root": ds.root_name,
        "on_bad_file": ds.on_bad_file,
    }
    if ds.checkpoints != "final":  # only then: the other datasets' params stay as they were
        body["checkpoints"] = ds.checkpoints
    if ds.source == "local" and os.path.isdir(local_path(ds.local_path)):
        body["content"] = local_folder_listing(local_dataset_root(ds.name, ds.local_path))
    return ReadableJson(json.dumps(body, sort_keys=True))


def get_split_seed(wildcards):
    return get_dataset_config(wildcards).split_seed


def get_canonicalize_mode(wildcards):
    return get_dataset_config(wildcards).canonicalize


def get_view_config(wildcards):
    return DATA.views[wildcards.view]


def get_view_dataset_files(wildcards):
    """The canonical table, its summary and the splits of the view's dataset."""
    ds = get_view_config(wildcards).dataset
    return {
        "table": f"results/data/{ds}/canonical.h5",
        "summary": f"results/data/{ds}/canonical.json",
        "splits": f"results/data/{ds}/splits.json",
    }


def get_view_params(wildcards):
    return ReadableJson(get_view_config(wildcards).params())


def get_view_config_hash(wildcards):
    """Hash of every setting that decides this view's stores (dataset + view), for provenance."""
    view = get_view_config(wildcards)
    ds = DATA.datasets[view.dataset]
    body = json.dumps(
        {
            "acquire": json.loads(ds.acquire_params()),
            "canonicalize": ds.canonicalize,
            "on_bad_file": ds.on_bad_file,
            "split_seed": ds.split_seed,
            **({"checkpoints": ds.checkpoints} if ds.checkpoints != "final" else {}),
            "view": json.loads(view.params()),
        },
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def get_cache(view, split):
    """Path of one cached split: results/cache/<view>/<split>.zarr."""
    if view not in DATA.views:
        raise WorkflowError(f"config.yaml: view '{view}' is not defined under 'views'")
    return f"results/cache/{view}/{split}.zarr"


def get_view_stores(view):
    """The three stores a training job on ``view`` reads: dict(train=..., val=..., test=...)."""
    return {split: get_cache(view, split) for split in SPLITS}


def get_data_targets():
    """Every store of every view (the `data_all` target)."""
    return [get_cache(v, s) for v in DATA.views for s in SPLITS]
