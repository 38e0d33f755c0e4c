"""Building blocks of ScaleGMN, one family per module (see each module's docstring for the
equation and the group action it respects)."""

from scalegmn.nn.edge_update import EdgeUpdate, PermEdgeUpdate
from scalegmn.nn.equivariant import ReScaleEq, ScaleEq, inverse_edge
from scalegmn.nn.graph_batch import (
    FlatGraph,
    RowGroups,
    from_mixed_batch,
    from_weight_batch,
    node_roles,
)
from scalegmn.nn.invariant import ScaleInv, Tau
from scalegmn.nn.layers import GMNLayer, LayerOptions, ScaleGMNLayer
from scalegmn.nn.mlp import MLP, split_first_linear
from scalegmn.nn.positional import PositionalEncoding
from scalegmn.nn.readout import (
    BidirLastLayerReadout,
    DeepSetReadout,
    EditingHead,
    FullGraphReadout,
    LastLayerReadout,
)

__all__ = [
    "MLP",
    "BidirLastLayerReadout",
    "DeepSetReadout",
    "EdgeUpdate",
    "EditingHead",
    "FlatGraph",
    "FullGraphReadout",
    "GMNLayer",
    "LastLayerReadout",
    "LayerOptions",
    "PermEdgeUpdate",
    "PositionalEncoding",
    "ReScaleEq",
    "RowGroups",
    "ScaleEq",
    "ScaleGMNLayer",
    "ScaleInv",
    "Tau",
    "from_mixed_batch",
    "from_weight_batch",
    "inverse_edge",
    "node_roles",
    "split_first_linear",
]
