"""ScaleGMN: scale-equivariant graph metanetworks and the pipeline around them.

Kept light on purpose: importing the package does not import torch, so the Snakefile parses fast.
"""

__version__ = "0.1.0"
