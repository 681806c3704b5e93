# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Constants and exceptions shared by the modules of faiss_ehi.distributed."""

import numpy as np

#: File name of the manifest written by shard() into its directory.
MANIFEST_NAME = "manifest.json"
_MANIFEST_FORMAT = 1
_FLT_MAX = float(np.finfo(np.float32).max)
#: Leaf placements of leaf_shard_map / shard.
STRATEGIES = ("balanced", "contiguous", "coprobe", "coprobe_leaves")


class ShardLostError(RuntimeError):
    """Every replica of a shard is gone and it could not be re-loaded, so
    the queries that need it cannot be answered in full."""


class ShardNotLoadedError(RuntimeError):
    """Raised on a worker asked to scan a shard it does not hold (it was
    restarted and lost its cache); the client re-loads and retries."""
