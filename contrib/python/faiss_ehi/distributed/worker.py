# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Code that runs in the Dask worker processes: the shard cache, scans and adds."""

import os
import threading

import numpy as np

import faiss

import faiss_ehi

from .common import ShardNotLoadedError, _FLT_MAX
from .placement import _ivf_parts, _list_sizes

# These functions run in the Dask worker processes. A worker keeps the
# shards it loaded in _CACHE (one per process) for as long as it lives:
# a restarted worker starts empty and answers ShardNotLoadedError, which
# the client handles by loading the shard again.

_CACHE = {}
_CACHE_LOCK = threading.Lock()


class _Shard:
    """A loaded shard: the index and, per stored entry, its id in list
    order (to turn store_pairs labels back into ids)."""

    def __init__(self, index):
        self.index = index
        self.ivf, _ = _ivf_parts(index)
        self.refresh()

    def refresh(self):
        il = self.ivf.invlists
        sizes = _list_sizes(self.ivf)
        self.start = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.start[1:])
        self.ids = np.empty(int(self.start[-1]), dtype=np.int64)
        for l in np.nonzero(sizes)[0]:
            ptr = il.get_ids(int(l))
            self.ids[self.start[l]:self.start[l + 1]] = \
                faiss.rev_swig_ptr(ptr, int(sizes[l]))


def _load_shard(key, source):
    """Load a shard into this worker's cache (file name or serialised
    bytes); a second call with the same key is a no-op."""
    with _CACHE_LOCK:
        if key in _CACHE:
            return int(_CACHE[key].index.ntotal)
    if isinstance(source, (bytes, bytearray, np.ndarray)):
        index = faiss_ehi.deserialize_index(
            np.frombuffer(source, dtype=np.uint8))
    else:
        index = faiss_ehi.read_index(source)
    sh = _Shard(index)
    with _CACHE_LOCK:
        _CACHE.setdefault(key, sh)
    return int(index.ntotal)


def _drop_shard(key):
    with _CACHE_LOCK:
        _CACHE.pop(key, None)


def _get_shard(key):
    with _CACHE_LOCK:
        sh = _CACHE.get(key)
    if sh is None:
        raise ShardNotLoadedError(f"shard {key} is not loaded on this worker")
    return sh


def _scan_shard(key, x, assign, coarse, k):
    """The shard's candidates for queries x (already transformed) probing
    the leaves `assign` (n x nprobe, -1 where another shard owns the leaf).

    Returns (D, I, P): per query every stored entry of this shard whose
    distance is within the shard's k-th best (all ties included, so the
    client's merge can reproduce the single index's tie-breaking), padded
    with label -1; P is the entry's scan position (rank of its list in
    the query's probe order << 32 | offset in the list)."""
    sh = _get_shard(key)
    n, nprobe = assign.shape
    params = faiss.SearchParametersIVF()
    params.nprobe = nprobe
    keep_max = sh.ivf.metric_type == faiss.METRIC_INNER_PRODUCT
    rows = np.arange(n)
    width = k + 1
    out = {}
    while len(rows):
        xr = np.ascontiguousarray(x[rows])
        ar = np.ascontiguousarray(assign[rows])
        cr = np.ascontiguousarray(coarse[rows])
        D = np.empty((len(rows), width), dtype=np.float32)
        L = np.empty((len(rows), width), dtype=np.int64)
        # store_pairs: labels are (list, offset), which give the scan
        # position; the ids come from the shard's id table.
        sh.ivf.search_preassigned(
            len(rows), faiss.swig_ptr(xr), width, faiss.swig_ptr(ar),
            faiss.swig_ptr(cr), faiss.swig_ptr(D), faiss.swig_ptr(L), True,
            params)
        # Complete when the last slot is empty or strictly worse than the
        # k-th: then every entry tied with the k-th is in.
        full = L[:, -1] >= 0
        tied = full & (D[:, k - 1] == D[:, -1])
        for j in np.nonzero(~tied)[0]:
            out[int(rows[j])] = (D[j], L[j])
        rows = rows[tied]
        width *= 2
    W = max(len(v[0]) for v in out.values()) if out else k + 1
    D = np.full((n, W), -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
    L = np.full((n, W), -1, dtype=np.int64)
    for i, (d, l) in out.items():
        D[i, :len(d)] = d
        L[i, :len(l)] = l
    valid = L >= 0
    lists = np.where(valid, L >> 32, 0)
    offs = np.where(valid, L & 0xffffffff, 0)
    I = np.where(valid, sh.ids[sh.start[lists] + offs], -1)
    # Rank of each candidate's list in its query's probe order.
    rank = np.argmax(assign[:, None, :] == lists[:, :, None], axis=2)
    P = np.where(valid, (rank.astype(np.int64) << 32) | offs, -1)
    return D, I, P


def _add_to_shard(key, x, ids, lists):
    """Add vectors with their ids to the given lists of a loaded shard."""
    sh = _get_shard(key)
    x = np.ascontiguousarray(x, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    lists = np.ascontiguousarray(lists, dtype=np.int64)
    sh.ivf.add_core(len(x), faiss.swig_ptr(x), faiss.swig_ptr(ids),
                    faiss.swig_ptr(lists))
    if sh.index is not sh.ivf:
        sh.index.ntotal = sh.ivf.ntotal
    sh.refresh()
    return int(sh.index.ntotal)


def _worker_memory():
    """Resident and peak resident memory (VmRSS, VmHWM) of this worker
    process in bytes. VmHWM, not ru_maxrss: a spawned worker's ru_maxrss
    keeps the peak of the process it was forked from (the client)."""
    out = {"pid": os.getpid(), "rss": 0, "peak": 0}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key = "rss" if line.startswith("VmRSS") else "peak"
                out[key] = int(line.split()[1]) * 1024
    return out
