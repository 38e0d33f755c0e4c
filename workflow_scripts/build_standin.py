"""Rule build_standin: build the offline stand-in zoo of a dataset into raw/ (real file format)."""

import json

import torch

from scalegmn.data.standins.zoos import build_standin_raw
from scalegmn.logs import configure

with configure(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    build_standin_raw(json.loads(snakemake.params.acquire), snakemake.output[0])
