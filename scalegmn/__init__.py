"""ScaleGMN: scale-equivariant graph metanetworks and the pipeline around them.

The subpackages follow the pipeline, each importing only those before it:
``weightspace`` (what a network is) < ``data`` < ``nn`` < ``models`` < ``train`` < ``report``
< ``cli``; see the README's architecture picture for the rules each one serves.

Kept light on purpose: importing the package does not import torch, so the Snakefile parses fast.
"""

__version__ = "0.1.0"
