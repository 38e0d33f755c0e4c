"""Readers and writers for every weight-zoo file format the pipeline consumes.

One module per on-disk format (docs/datasets.md §1-§4, §8); each reads files into
:class:`scalegmn.weightspace.network.Network` and writes a Network back in exactly the published layout:

- :mod:`~scalegmn.data.formats.mnist_inr`: DWS MNIST-INRs (``mnist_png_*/checkpoints/model_final.pth``);
- :mod:`~scalegmn.data.formats.fmnist_inr`: FMNIST-INRs (``train|test/model_{i}.pth`` + ``splits.json``);
- :mod:`~scalegmn.data.formats.cifar_inr`: NFN CIFAR10-INRs (``randinit_smaller_{c}s/net{idx}.pth``);
- :mod:`~scalegmn.data.formats.cnn_zoo`: the Small CNN Zoo (``weights.npy``, ``layout.csv``,
  ``metrics.csv.gz``, NFN split CSVs);
- :mod:`~scalegmn.data.formats.wild_park`: CNN Wild Park (``<trial>/<checkpoint>/checkpoint.pt``
  Ray checkpoints, read with a stub unpickler, + ``cnn_park_splits.json``);
- :mod:`~scalegmn.data.formats.generic`: your own zoo: state dicts or safetensors + ``manifest.csv``;
- :mod:`~scalegmn.data.formats.mnist_images`: torchvision's raw idx image/label files;
- :mod:`~scalegmn.data.formats.detect`: which format a dataset root holds;
- :mod:`~scalegmn.data.formats.summary` and :mod:`~scalegmn.data.formats.command`: what a file
  or zoo holds (``scalegmn read``);
- shared by the formats: :mod:`~scalegmn.data.formats.statedict` (state dict <-> Network) and
  :mod:`~scalegmn.data.formats.torchfile` (safe ``.pth`` I/O); atomic writes come from
  :mod:`scalegmn.atomic`.

Every malformed file raises :class:`scalegmn.errors.DataError` (one line naming the file and
the problem); every writer writes to a temporary name and renames it into place.
Submodules import torch, so this package ``__init__`` imports none of them.
"""

__all__ = [
    "cifar_inr",
    "cnn_zoo",
    "command",
    "detect",
    "fmnist_inr",
    "generic",
    "mnist_images",
    "mnist_inr",
    "statedict",
    "summary",
    "torchfile",
    "wild_park",
]
