# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""faiss_ehi indexes are genuine Faiss objects: types, shared Faiss state,
the numpy API, Faiss's wrappers and tools, and object lifetimes."""

import gc
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import faiss
import faiss_ehi
from faiss.contrib import evaluation, inspect_tools, ivf_tools

from conftest import recall_at


@pytest.mark.parametrize("key, cls", [
    ("EHI8x2", faiss.IndexIVFFlat),
    ("EHI8x2,Flat", faiss.IndexIVFFlat),
    ("EHI8x2_paper,Flat", faiss.IndexIVFFlat),
    ("EHI4x2,SQ8", faiss.IndexIVFScalarQuantizer),
    ("EHI4x2,PQ4", faiss.IndexIVFPQ),
    ("PCA8,EHI4x2,Flat", faiss.IndexPreTransform),
    ("L2norm,EHI4x2,Flat", faiss.IndexPreTransform),
    ("IDMap,EHI4x2,Flat", faiss.IndexIDMap),
])
def test_factory_types(key, cls):
    index = faiss_ehi.index_factory(24, key)
    assert isinstance(index, faiss.Index)
    assert isinstance(index, cls)
    assert index.thisown
    ivf = faiss.extract_index_ivf(index)
    assert isinstance(ivf, faiss.IndexIVF)
    assert faiss_ehi.is_ehi(index)
    assert faiss_ehi.tree_quantizer(index) is not None
    if cls in (faiss.IndexIVFFlat, faiss.IndexIVFScalarQuantizer,
               faiss.IndexIVFPQ):
        assert isinstance(index, faiss.IndexIVF)


def test_non_ehi_keys_are_faiss():
    for key in ("IVF16,Flat", "Flat", "PCA8,IVF16,SQ8", "HNSW8"):
        ours = faiss_ehi.index_factory(24, key)
        theirs = faiss.index_factory(24, key)
        assert type(ours) is type(theirs)
        assert not faiss_ehi.is_ehi(ours)
        assert faiss_ehi.tree_quantizer(ours) is None


def test_one_copy_of_faiss(data):
    """The extension uses python3-faiss's Faiss: same indexIVF_stats."""
    ours = faiss_ehi._C.ivf_stats_address()
    theirs = int(faiss.cvar.indexIVF_stats.this)
    assert ours == theirs
    index = faiss_ehi.index_factory(data.d, "EHI8x2,Flat")
    index.train(data.xt)
    index.add(data.xb)
    index.nprobe = 4
    faiss.cvar.indexIVF_stats.reset()
    index.search(data.xq, 10)
    stats = faiss.cvar.indexIVF_stats
    assert stats.nq == len(data.xq)
    assert 0 < stats.ndis < len(data.xq) * data.xb.shape[0]
    # ndis is the size of the probed lists (d2l = 1: no duplicates)
    q = faiss_ehi.tree_quantizer(index)
    _, leaves = q.search(data.xq, 4)
    sizes = np.array(inspect_tools.get_invlist_sizes(index.invlists))
    assert stats.ndis == sizes[leaves].sum()


def test_numpy_api(data):
    index = faiss_ehi.index_factory(data.d, "EHI8x2,Flat")
    assert not index.is_trained
    index.train(data.xt)
    assert index.is_trained
    index.add(data.xb)
    assert index.ntotal == len(data.xb)
    index.nprobe = 16
    D, I = index.search(data.xq, 10)
    assert D.shape == (len(data.xq), 10) and D.dtype == np.float32
    assert I.dtype == np.int64
    assert recall_at(I, data.gt_I) > 0.6
    assert np.all(np.diff(D, axis=1) >= 0)

    # range search agrees with the k-NN results at the same beam
    radius = float(np.median(D[:, 4]))
    lims, RD, RI = index.range_search(data.xq, radius)
    for i in range(len(data.xq)):
        got = set(RI[lims[i]:lims[i + 1]])
        want = set(I[i][D[i] < radius])
        assert want <= got
        assert np.all(RD[lims[i]:lims[i + 1]] < radius)

    # reconstruct needs a direct map, as for any IVF index (a hash table,
    # because Faiss's array map does not support remove_ids)
    index.set_direct_map_type(faiss.DirectMap.Hashtable)
    np.testing.assert_array_equal(index.reconstruct(17), data.xb[17])
    np.testing.assert_array_equal(index.reconstruct_n(10, 5), data.xb[10:15])

    # remove_ids with an array and with a selector
    n = index.remove_ids(np.arange(100, dtype=np.int64))
    assert n == 100 and index.ntotal == len(data.xb) - 100
    index.set_direct_map_type(faiss.DirectMap.NoMap)  # for range selectors
    n = index.remove_ids(faiss.IDSelectorRange(100, 200))
    assert n == 100 and index.ntotal == len(data.xb) - 200
    _, I2 = index.search(data.xq, 10)
    assert not np.isin(I2, np.arange(200)).any()

    # search with per-call parameters (the beam)
    params = faiss.SearchParametersIVF()
    params.nprobe = 1
    faiss.cvar.indexIVF_stats.reset()
    index.search(data.xq, 10, params=params)
    ndis1 = faiss.cvar.indexIVF_stats.ndis
    params.nprobe = 8
    faiss.cvar.indexIVF_stats.reset()
    index.search(data.xq, 10, params=params)
    assert faiss.cvar.indexIVF_stats.ndis > ndis1


def test_parameter_space_beam(data):
    index = faiss_ehi.index_factory(data.d, "EHI8x2,Flat")
    index.train(data.xt)
    index.add(data.xb)
    ps = faiss.ParameterSpace()
    ps.initialize(index)
    names = [ps.combination_name(i) for i in range(ps.n_combinations())]
    assert names[:4] == ["nprobe=1", "nprobe=2", "nprobe=4", "nprobe=8"]
    ps.set_index_parameter(index, "nprobe", 8)
    assert index.nprobe == 8
    ps.set_index_parameters(index, "nprobe=2")
    assert faiss.extract_index_ivf(index).nprobe == 2

    crit = faiss.OneRecallAtRCriterion(len(data.xq), 10)
    crit.set_groundtruth(None, data.gt_I[:, :1].copy())
    crit.nnn = 10
    op = ps.explore(index, data.xq, crit)
    # Which points are Pareto-optimal depends on timings (the machine may
    # be busy); the best one must reach a high recall.
    points = op.optimal_pts
    assert points.size() >= 2
    perfs = [points.at(i).perf for i in range(points.size())]
    assert perfs == sorted(perfs) and perfs[-1] > 0.8
    assert points.at(points.size() - 1).key.startswith("nprobe=")


def test_faiss_wrappers(data):
    """IndexIDMap, IndexShards, IndexPreTransform and faiss.contrib."""
    base = faiss_ehi.index_factory(data.d, "EHI8x2,Flat")
    base.train(data.xt)
    base.nprobe = 8
    trained = faiss_ehi.clone_index(base)  # still empty

    idmap = faiss.IndexIDMap(base)
    ids = np.arange(len(data.xb), dtype=np.int64) * 10 + 3
    idmap.add_with_ids(data.xb, ids)
    _, I = idmap.search(data.xq, 10)
    assert np.all(I % 10 == 3)
    assert recall_at((I - 3) // 10, data.gt_I) > 0.5

    shards = faiss.IndexShards(data.d)
    parts = []
    for s in range(2):
        part = faiss_ehi.clone_index(trained)
        part.add(data.xb[s::2])
        parts.append(part)
        shards.add_shard(part)
    del parts
    gc.collect()
    D, I = shards.search(data.xq, 10)
    assert I.shape == (len(data.xq), 10) and (I >= 0).all()

    # faiss.contrib on the EHI IVF
    index = faiss_ehi.clone_index(trained)
    index.add(data.xb)
    sizes = inspect_tools.get_invlist_sizes(index.invlists)
    assert sum(sizes) == len(data.xb) and len(sizes) == 64
    list_ids, _ = inspect_tools.get_invlist(index.invlists, int(np.argmax(sizes)))
    assert len(list_ids) == max(sizes)
    q = faiss_ehi.tree_quantizer(index)
    _, lists = q.search(data.xq, 8)
    D2, I2 = ivf_tools.search_preassigned(index, data.xq, 10, lists)
    D1, I1 = index.search(data.xq, 10)
    np.testing.assert_array_equal(I1, I2)
    assert evaluation.knn_intersection_measure(I1, data.gt_I) > 0.5


def test_hand_built_ivf_keeps_quantizer_alive(data):
    q = faiss_ehi.EHITreeQuantizer(data.d, 4, 2)
    assert isinstance(q, faiss.Index) and q.ntotal == 16
    index = faiss.IndexIVFFlat(q, data.d, 16)
    index.quantizer_trains_alone = 1
    del q
    gc.collect()
    index.train(data.xt)
    index.add(data.xb)
    index.nprobe = 4
    _, I = index.search(data.xq, 10)
    assert recall_at(I, data.gt_I) > 0.5
    assert faiss_ehi.is_ehi(index)


def _make_index(d, xt, xb):
    index = faiss_ehi.index_factory(d, "PCA16,EHI4x2,Flat")
    index.train(xt)
    index.add(xb)
    return index


def test_lifetimes(data):
    # the index outlives the function (and the temporaries) that made it
    index = _make_index(data.d, data.xt, data.xb)
    gc.collect()
    faiss.extract_index_ivf(index).nprobe = 4
    D, I = index.search(data.xq, 10)

    # a clone outlives its original
    clone = faiss_ehi.clone_index(index)
    del index
    gc.collect()
    D2, I2 = clone.search(data.xq, 10)
    np.testing.assert_array_equal(I, I2)

    # the tree quantizer keeps its index alive
    q = faiss_ehi.tree_quantizer(clone)
    del clone
    gc.collect()
    _, leaves = q.search(data.xq[:, :16], 2)
    assert leaves.shape == (len(data.xq), 2) and (leaves >= 0).all()

    # many short-lived indexes: no leak of ownership, no double free
    for _ in range(20):
        tmp = faiss_ehi.index_factory(data.d, "EHI4x1")
        tmp2 = faiss_ehi.clone_index(tmp)
        del tmp, tmp2
    gc.collect()


def test_swig_type_table_survives():
    """Indexes made in C++ by faiss_ehi and owned by Faiss proxies keep the
    SWIG type table's reference count balanced: after many of them are
    freed, Faiss still finds its proxy classes, and nothing is reported as
    leaked at interpreter exit."""
    for _ in range(50):
        tmp = faiss_ehi.index_factory(8, "EHI2x2")
        del tmp
    gc.collect()
    assert type(faiss.downcast_index(faiss.IndexFlatL2(4))) is \
        faiss.IndexFlat
    idx = faiss.index_factory(8, "IVF4,Flat")
    assert type(faiss.try_extract_index_ivf(idx)) is faiss.IndexIVF

    # Module globals in a reference cycle are freed last, at exit.
    code = textwrap.dedent("""
        import faiss, faiss_ehi
        a = faiss_ehi.index_factory(8, "EHI2x2")
        b = faiss_ehi.clone_index(a)
        q = faiss_ehi.EHITreeQuantizer(8, 2, 2)
        c = faiss.index_factory(8, "IVF4,Flat")
        ps = faiss.ParameterSpace()
        def cycle():
            return a, b, c, q, ps
        print("done")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "done", r.stdout
