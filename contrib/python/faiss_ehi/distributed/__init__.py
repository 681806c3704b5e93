# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""EHI served by leaf-owning shards on Dask distributed.

Faiss's ``IndexShards`` sends every query to every shard. An EHI index
already knows, from its tree, which leaves (inverted lists) a query needs,
so a shard that owns a set of leaves only has to see the queries whose
beam reaches one of them. This module cuts an index into such shards and
serves them from Dask workers:

- :func:`shard` cuts a trained (filled or empty) EHI index into
  ``n_shards`` leaf-owning shard files plus a router file (the same index
  with no lists: the tree) and a ``manifest.json``. Each shard file is an
  ordinary faiss_ehi file (same tree, only its own lists filled) that
  :func:`faiss_ehi.read_index` opens on its own.
- :class:`DistributedEHI` places the shards on the workers of a
  ``distributed.Client`` (each worker loads a shard once and keeps it;
  replicas go to different workers), routes queries with the tree on the
  client, sends each query only to the shards owning its probed leaves,
  scans there (``search_preassigned`` with the client's leaves) and merges
  the top-k so that results equal the single index's exactly, ids and
  distances, ties included. ``add`` routes documents to their shards.
- A worker that dies is replaced: its shards are re-loaded on a live
  worker (a replica answers meanwhile); a shard that cannot be served
  raises :class:`ShardLostError` naming it, or, with
  ``allow_partial=True``, the affected queries are marked incomplete.

``python3 -m faiss_ehi.distributed`` has the ``shard`` and ``serve``
commands (see its ``--help`` and the README, "Distributed serving").

Supported indexes: ``faiss.IndexIVF`` with an EHI tree quantizer (Flat,
SQ, PQ storage) and ``faiss.IndexPreTransform`` over one (the transform
runs on the client). Not supported: a direct map (``make_direct_map``),
``max_codes`` and ID selectors in the search parameters (their result
depends on all lists being scanned in one place).

Modules: ``placement`` (which shard owns which leaf), ``sharding`` (the
shard files and their manifest), ``worker`` (what runs in the Dask
workers), ``merge`` (the exact top-k merge) and ``client``
(:class:`DistributedEHI`).
"""

from .common import (MANIFEST_NAME, STRATEGIES, ShardLostError,
                     ShardNotLoadedError)
from .placement import default_strategy, leaf_shard_map, shards_touched
from .sharding import load_manifest, shard
from .worker import _worker_memory  # noqa: F401 (benchs/bench_distributed)
from .client import DistributedEHI

__all__ = ["shard", "load_manifest", "DistributedEHI", "ShardLostError",
           "ShardNotLoadedError", "leaf_shard_map", "shards_touched",
           "default_strategy", "MANIFEST_NAME", "STRATEGIES"]
