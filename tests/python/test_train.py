# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Training from Python: index.train() with the registered trainer, and
train_pairs() on relevance data (LibTorch)."""

import threading
import time

import numpy as np
import pytest

import faiss
import faiss_ehi

from conftest import recall_at

needs_torch = pytest.mark.skipif(not faiss_ehi.has_torch,
                                 reason="faiss_ehi built without LibTorch")


def test_kmeans_trainer_is_deterministic(data):
    faiss_ehi.set_trainer("kmeans", seed=7)
    assert faiss_ehi.trainer_name() == "k-means"
    results = []
    for _ in range(2):
        index = faiss_ehi.index_factory(data.d, "EHI8x2,Flat")
        index.train(data.xt)
        index.add(data.xb)
        index.nprobe = 4
        results.append(index.search(data.xq, 10))
    np.testing.assert_array_equal(results[0][1], results[1][1])


@needs_torch
def test_torch_drop_in(data):
    faiss_ehi.set_trainer("torch")
    assert "torch" in faiss_ehi.trainer_name()
    index = faiss_ehi.index_factory(data.d, "EHI4x2,Flat")
    threads = faiss.omp_get_max_threads()
    index.train(data.xt[:2000])
    # LibTorch lowers OpenMP's thread count when it starts; Faiss keeps it
    assert faiss.omp_get_max_threads() == threads
    index.add(data.xb)
    index.nprobe = 4
    _, I = index.search(data.xq, 10)
    assert recall_at(I, data.gt_I) > 0.5


def _pairs(seed=0, nq=400, nd=1500, d=16):
    """Queries that are noisy copies of their relevant document."""
    rs = np.random.RandomState(seed)
    docs = rs.randn(nd, d).astype("float32")
    rel = rs.randint(0, nd, nq)
    queries = docs[rel] + 0.1 * rs.randn(nq, d).astype("float32")
    return queries, docs, np.stack([np.arange(nq), rel], 1)


@needs_torch
def test_train_pairs(capfd):
    queries, docs, pairs = _pairs()
    threads = faiss.omp_get_max_threads()
    index, history = faiss_ehi.train_pairs(
        queries, docs, pairs, B=8, H=1, epochs=2, batch=64, beam=2,
        encoder="identity", threads=1, seed=3, return_history=True)
    assert faiss.omp_get_max_threads() == threads
    assert isinstance(index, faiss.Index)
    assert faiss_ehi.is_ehi(index)
    assert len(history) == 2 and history[-1]["epoch"] == 2
    assert np.isfinite(history[-1]["loss"])
    assert "epoch" in capfd.readouterr().err  # the trainer's progress
    assert index.ntotal == 0 and index.is_trained
    index.add(docs)
    ivf = faiss.extract_index_ivf(index)
    assert ivf.nlist == 8 and ivf.nprobe == 2
    _, I = index.search(queries, 5)
    assert np.mean(I[:, 0] == pairs[:, 1]) > 0.5
    # the trained index goes through faiss_ehi's IO like any other
    back = faiss_ehi.deserialize_index(faiss_ehi.serialize_index(index))
    np.testing.assert_array_equal(back.search(queries, 5)[1], I)


@needs_torch
def test_train_pairs_relevance_recipe_settings():
    # the re-clustering and negative settings are keyword arguments too
    queries, docs, pairs = _pairs(seed=2)
    index, history = faiss_ehi.train_pairs(
        queries, docs, pairs, B=8, H=1, epochs=4, warmup_epochs=2,
        encoder="head", recluster=True, leaf_slack=1.2, tree_grad=0.5,
        balanced_targets=True, doc_routing=0.5, doc_routing_corpus=False,
        de_negatives=2, refresh=1,
        threads=1, progress=False,
        return_history=True)
    assert len(history) == 4
    last = history[-1]
    assert last["empty_leaves"] == 0 and last["max_load"] < 3.0
    with pytest.raises(Exception, match="tree_grad"):
        faiss_ehi.train_pairs(queries, docs, pairs, tree_grad=2.0,
                              epochs=1, progress=False)


def _other_value(type_name, default):
    """A value of the given field type that differs from its default."""
    if type_name == "bool":
        return default != "1"
    if type_name in ("int", "uint64"):
        return int(default) + 3
    if type_name == "float":
        return float(default) * 0.5 + 0.25
    if type_name == "str":
        return default + "/elsewhere"
    return None  # enumerations: chosen by name below


@needs_torch
def test_every_config_field_is_a_keyword_argument():
    # Every JointTrainerConfig field can be set from Python, and setting it
    # changes that field and no other one.
    fields = faiss_ehi.train_config_fields()
    names = [f[0] for f in fields]
    assert len(names) == len(set(names)) and len(names) >= 40
    for must in ("joint_enc_lr", "fixed_leaves", "warmup_negatives", "init",
                 "recluster", "tree_grad", "seed", "progress"):
        assert must in names
    assert "stop_after_epoch" not in names  # a test hook, not a setting
    default = faiss_ehi._C._describe_config().split(" ")
    assert default == [f"{n}={d}" for n, _, d, _ in fields]
    enum_values = {"form": "paper", "doc_assign": "nearest",
                   "encoder": "identity", "init": "random",
                   "recipe": "probe"}
    for i, (name, type_name, dflt, help_text) in enumerate(fields):
        assert help_text, name
        value = enum_values[name] if type_name == "enum" else \
            _other_value(type_name, dflt)
        assert value is not None, f"no test value for the field {name}"
        got = faiss_ehi._C._describe_config(**{name: value}).split(" ")
        changed = [j for j in range(len(got)) if got[j] != default[j]]
        assert changed == [i], (name, value, got[i])
    with pytest.raises(TypeError, match="unexpected keyword"):
        faiss_ehi._C._describe_config(stop_after_epoch=1)
    with pytest.raises(ValueError, match="one of 'kmeans', 'random'"):
        faiss_ehi._C._describe_config(init="pca")
    with pytest.raises(TypeError, match="wrong type"):
        faiss_ehi._C._describe_config(B=2.5)


@needs_torch
def test_train_pairs_releases_the_gil():
    queries, docs, pairs = _pairs(seed=1, nq=4000, nd=8000)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    try:
        start = time.perf_counter()
        faiss_ehi.train_pairs(queries, docs, pairs, B=8, H=1, epochs=30,
                              encoder="head", threads=1, progress=False)
        elapsed = time.perf_counter() - start
    finally:
        done.set()
        t.join()
    # With the GIL held for the whole training the ticker could not run
    # between the first and the last moments of the call. (A loose bound:
    # the machine may be busy.)
    during = [x for x in ticks
              if start + 0.05 < x < start + elapsed - 0.05]
    assert elapsed > 0.3, "training too short to tell"
    assert len(during) >= 3, (len(during), elapsed)
