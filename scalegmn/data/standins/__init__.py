"""Offline stand-ins for the datasets, written in their exact real formats.

- :mod:`scalegmn.data.standins.zoos`: ``build_standin(name, root, size=, seed=)``, the public entry;
  it imports the family module of the zoo it builds:
- :mod:`scalegmn.data.standins.inr_zoos`: the MNIST, F-MNIST and CIFAR-10 INR zoos.
- :mod:`scalegmn.data.standins.cnn_zoos`: the Small CNN Zoo stand-ins.
- :mod:`scalegmn.data.standins.scale_zoos`: the real sizes with random weights (data-path throughput).
- :mod:`scalegmn.data.standins.images`: the digits and glyphs the networks are fitted/trained on.
- :mod:`scalegmn.data.standins.siren_fit`: batched SIREN init recipes and fitting.
- :mod:`scalegmn.data.standins.cnn_train`: batched training of Small CNN Zoo runs.
- :mod:`scalegmn.data.standins.command`: the ``scalegmn standins`` subcommand.
- :mod:`scalegmn.data.standins.sizes`: names, root folders and sizes (stdlib only, read at parse time).
- :mod:`scalegmn.data.standins.cnn_reference`: how a CNN stand-in compares with the real zoo.
- :mod:`scalegmn.data.standins.wild_park`: the CNN Wild Park stand-in (varied architectures, Ray checkpoints).

Importing this package imports nothing heavy; the submodules import torch.
"""

__all__ = [
    "cnn_reference", "cnn_train", "cnn_zoos", "command", "images", "inr_zoos", "scale_zoos", "siren_fit",
    "sizes", "wild_park", "zoos",
]
