# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Wrong arguments raise Python exceptions (TypeError / ValueError, or
RuntimeError with the C++ message), never crash the interpreter."""

import numpy as np
import pytest

import faiss
import faiss_ehi


@pytest.fixture(scope="module")
def index():
    faiss_ehi.set_trainer("kmeans")
    rs = np.random.RandomState(0)
    index = faiss_ehi.index_factory(8, "EHI4x2,Flat")
    index.train(rs.rand(500, 8).astype("float32"))
    index.add(rs.rand(500, 8).astype("float32"))
    return index


@pytest.mark.parametrize("x, exc", [
    (np.zeros((5, 3), "float32"), ValueError),        # wrong d
    (np.zeros(8, "float32"), ValueError),             # 1-D
    (np.zeros((2, 5, 8), "float32"), ValueError),     # 3-D
    (np.array([["a"] * 8] * 3), TypeError),           # strings
    (np.zeros((3, 8), "complex64"), TypeError),       # complex
    (np.array([[object()] * 8] * 2), TypeError),      # objects
    ("not an array", TypeError),
])
def test_bad_arrays(index, x, exc):
    for call in (lambda: index.search(x, 3), lambda: index.add(x),
                 lambda: index.train(x), lambda: index.range_search(x, 1.0),
                 lambda: index.assign(x, 1)):
        with pytest.raises(exc):
            call()


def test_other_dtypes_convert(index):
    """Like Python Faiss, real arrays of another dtype are converted."""
    x = np.random.RandomState(1).rand(4, 8)
    D64, I64 = index.search(x, 3)
    D32, I32 = index.search(x.astype("float32"), 3)
    np.testing.assert_array_equal(I64, I32)
    index.search(np.asfortranarray(x), 3)  # non-contiguous is fine


def test_bad_scalars(index):
    x = np.zeros((2, 8), "float32")
    with pytest.raises(ValueError):
        index.search(x, 0)
    with pytest.raises(TypeError):
        index.search(x, 2.5)
    with pytest.raises(ValueError):
        index.add_with_ids(x, np.arange(3))
    with pytest.raises(TypeError):
        index.add_with_ids(x, np.array([0.5, 1.5]))
    with pytest.raises(TypeError):
        index.remove_ids(np.array([1.5]))
    with pytest.raises(ValueError):
        index.reconstruct(-1)
    with pytest.raises(ValueError):
        index.reconstruct_n(0, index.ntotal + 1)
    with pytest.raises(ValueError):
        index.reconstruct_n(0, -2)


def test_factory_errors():
    with pytest.raises(TypeError):
        faiss_ehi.index_factory("8", "EHI4x2")
    with pytest.raises(ValueError):
        faiss_ehi.index_factory(0, "EHI4x2")
    with pytest.raises(TypeError):
        faiss_ehi.index_factory(8, b"EHI4x2")
    with pytest.raises(RuntimeError, match="branching factor"):
        faiss_ehi.index_factory(8, "EHI1x2")
    with pytest.raises(RuntimeError, match="malformed EHI key"):
        faiss_ehi.index_factory(8, "EHIabc")
    with pytest.raises(RuntimeError, match="EHI supports"):
        faiss_ehi.index_factory(8, "EHI4x2", faiss.METRIC_L1)
    with pytest.raises(ValueError):
        faiss_ehi.EHITreeQuantizer(8, 1, 2)
    with pytest.raises(ValueError):
        faiss_ehi.EHITreeQuantizer(8, 4, 2, form="tree")


def test_io_errors(tmp_path):
    with pytest.raises(TypeError):
        faiss_ehi.write_index("not an index", str(tmp_path / "x"))
    with pytest.raises(TypeError):
        faiss_ehi.write_index(faiss.IndexFlatL2(4), 42)
    with pytest.raises(TypeError):
        faiss_ehi.clone_index(None)
    with pytest.raises(TypeError):
        faiss_ehi.deserialize_index(np.zeros(10, "float32"))
    with pytest.raises(ValueError):
        faiss_ehi.deserialize_index(np.zeros((2, 10), "uint8"))
    with pytest.raises(RuntimeError, match="magic"):
        faiss_ehi.deserialize_index(np.zeros(100, "uint8"))
    (tmp_path / "garbage").write_bytes(b"FEHI" + b"\0" * 10)
    with pytest.raises(RuntimeError):
        faiss_ehi.read_index(str(tmp_path / "garbage"))
    with pytest.raises(TypeError):
        faiss_ehi._C.write_index(object(), "x")  # the C layer checks too
    with pytest.raises(TypeError):
        faiss_ehi._C.clone_index(faiss.IDSelectorRange(0, 1))


def test_trainer_errors():
    with pytest.raises(ValueError):
        faiss_ehi.set_trainer("xyz")
    with pytest.raises(TypeError):
        faiss_ehi.set_trainer(3)
    faiss_ehi.set_trainer(None)
    assert faiss_ehi.trainer_name() is None
    index = faiss_ehi.index_factory(8, "EHI4x2")
    with pytest.raises(RuntimeError):
        index.train(np.random.rand(200, 8).astype("float32"))
    faiss_ehi.set_trainer("kmeans")
    index.train(np.random.rand(200, 8).astype("float32"))
    assert index.is_trained


@pytest.mark.skipif(not faiss_ehi.has_torch, reason="built without LibTorch")
def test_train_pairs_errors():
    rs = np.random.RandomState(0)
    q = rs.rand(20, 8).astype("float32")
    docs = rs.rand(30, 8).astype("float32")
    pairs = np.stack([np.arange(20), np.arange(20)], 1)
    with pytest.raises(TypeError):
        faiss_ehi.train_pairs(q, docs, pairs.astype("float32"))
    with pytest.raises(ValueError):
        faiss_ehi.train_pairs(q, docs[:, :4], pairs)
    with pytest.raises(ValueError):
        faiss_ehi.train_pairs(q, docs, pairs[:, :1])
    with pytest.raises(ValueError):
        faiss_ehi.train_pairs(q, docs, pairs + 25)  # doc ids out of range
    with pytest.raises(TypeError, match="unexpected keyword"):
        faiss_ehi.train_pairs(q, docs, pairs, no_such_param=1)
    with pytest.raises(ValueError, match="form"):
        faiss_ehi.train_pairs(q, docs, pairs, form="tree")
    with pytest.raises(TypeError):
        faiss_ehi.train_pairs(q, docs, pairs, epochs="many")
    # a config the C++ side rejects: its message comes through
    with pytest.raises(RuntimeError):
        faiss_ehi.train_pairs(q, docs, pairs, B=1, epochs=1, progress=False)


def test_edge_inputs_have_defined_outcomes():
    """NaN/Inf, k or nprobe beyond the lists, and zero-row calls: each has
    the outcome the README's "Reliability" section states."""
    faiss_ehi.set_trainer("kmeans")
    rs = np.random.RandomState(3)
    index = faiss_ehi.index_factory(8, "EHI4x2,Flat")
    index.train(rs.rand(500, 8).astype("float32"))
    index.add(rs.rand(50, 8).astype("float32"))
    x = rs.rand(3, 8).astype("float32")
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[1, 2] = bad
        for call in (lambda: index.search(y, 3), lambda: index.add(y),
                     lambda: faiss_ehi.index_factory(8, "EHI4x2").train(
                         np.vstack([rs.rand(100, 8), y]).astype("float32"))):
            with pytest.raises(RuntimeError, match="NaN or infinite"):
                call()
    assert index.ntotal == 50  # the refused add stored nothing
    # nprobe above the number of lists scans every list: exact results
    exact = faiss.IndexFlatL2(8)
    exact.add(index.reconstruct_n(0, index.ntotal))
    index.nprobe = 10 ** 6
    np.testing.assert_array_equal(index.search(x, 5)[1], exact.search(x, 5)[1])
    # k above what the probed lists hold: the rest are -1 (as in Faiss)
    D, I = index.search(x, 80)
    assert (I[:, 50:] == -1).all() and (I[:, :50] >= 0).all()
    index.nprobe = 0
    with pytest.raises(RuntimeError, match="nprobe"):
        index.search(x, 3)
    index.nprobe = 2
    # zero rows: empty results, nothing added; training needs vectors
    D, I = index.search(np.zeros((0, 8), "float32"), 5)
    assert D.shape == (0, 5) and I.shape == (0, 5)
    index.add(np.zeros((0, 8), "float32"))
    assert index.ntotal == 50
    lims, _, _ = index.range_search(np.zeros((0, 8), "float32"), 1.0)
    assert list(lims) == [0]
    with pytest.raises(RuntimeError):
        faiss_ehi.index_factory(8, "EHI4x2").train(np.zeros((0, 8), "float32"))
