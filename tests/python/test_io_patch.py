# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""IO round trips, patch_faiss(), and an unmodified Faiss-style script."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import faiss
import faiss_ehi


@pytest.fixture
def filled(data):
    index = faiss_ehi.index_factory(data.d, "EHI8x2,Flat")
    index.train(data.xt)
    index.add(data.xb)
    index.nprobe = 8
    return index


def _same_results(a, b, xq):
    Da, Ia = a.search(xq, 10)
    Db, Ib = b.search(xq, 10)
    np.testing.assert_array_equal(Ia, Ib)
    np.testing.assert_array_equal(Da, Db)


def test_write_read(tmp_path, data, filled):
    fname = str(tmp_path / "ehi.fehi")
    faiss_ehi.write_index(filled, fname)
    with open(fname, "rb") as f:
        assert f.read(4) == faiss_ehi.MAGIC
    back = faiss_ehi.read_index(fname)
    assert type(back) is type(filled)
    assert back.nprobe == 8 and back.ntotal == filled.ntotal
    _same_results(filled, back, data.xq)
    # os.PathLike names work as well
    back2 = faiss_ehi.read_index(tmp_path / "ehi.fehi")
    _same_results(filled, back2, data.xq)


def test_serialize_clone(data, filled):
    buf = faiss_ehi.serialize_index(filled)
    assert buf.dtype == np.uint8 and buf.ndim == 1
    assert bytes(buf[:4]) == faiss_ehi.MAGIC
    _same_results(filled, faiss_ehi.deserialize_index(buf), data.xq)
    clone = faiss_ehi.clone_index(filled)
    _same_results(filled, clone, data.xq)
    clone.add(data.xq)  # independent copies
    assert clone.ntotal == filled.ntotal + len(data.xq)


def test_pickle(data, filled):
    back = pickle.loads(pickle.dumps(filled))
    assert type(back) is type(filled)
    assert isinstance(back, faiss.IndexIVFFlat)
    _same_results(filled, back, data.xq)


def test_codecs_round_trip(data):
    for key in ("EHI4x2,SQ8", "PCA16,EHI4x2,Flat", "IDMap,EHI4x2,Flat"):
        index = faiss_ehi.index_factory(data.d, key)
        index.train(data.xt)
        index.add(data.xb) if "IDMap" not in key else index.add_with_ids(
            data.xb, np.arange(len(data.xb), dtype=np.int64) + 1000)
        back = faiss_ehi.deserialize_index(faiss_ehi.serialize_index(index))
        assert type(back) is type(index)
        _same_results(index, back, data.xq)


def test_corrupt_file_raises(tmp_path, filled):
    fname = tmp_path / "bad.fehi"
    faiss_ehi.write_index(filled, str(fname))
    raw = bytearray(fname.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    fname.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="checksum|corrupt"):
        faiss_ehi.read_index(str(fname))
    fname.write_bytes(bytes(raw[:100]))
    with pytest.raises(RuntimeError):
        faiss_ehi.read_index(str(fname))
    with pytest.raises(RuntimeError):
        faiss_ehi.read_index(str(tmp_path / "missing.fehi"))


def test_unpatched_faiss_refuses_ehi(tmp_path, filled):
    assert not faiss_ehi.is_patched()
    with pytest.raises(RuntimeError):
        faiss.write_index(filled, str(tmp_path / "x.idx"))


def test_patch_round_trips(tmp_path, data, patched):
    orig = faiss_ehi._originals
    assert faiss.index_factory is not orig["index_factory"]
    index = faiss.index_factory(data.d, "EHI8x2,Flat")
    assert isinstance(index, faiss.IndexIVFFlat)
    index.train(data.xt)
    index.add(data.xb)
    index.nprobe = 8
    fname = str(tmp_path / "ehi.index")
    faiss.write_index(index, fname)
    _same_results(index, faiss.read_index(fname), data.xq)
    _same_results(index, faiss.deserialize_index(faiss.serialize_index(index)),
                  data.xq)
    _same_results(index, faiss.clone_index(index), data.xq)
    # faiss's IOWriter / VectorIOReader objects work too
    writer = faiss.VectorIOWriter()
    faiss.write_index(index, writer)
    reader = faiss.VectorIOReader()
    faiss.copy_array_to_vector(faiss.vector_to_array(writer.data), reader.data)
    _same_results(index, faiss.read_index(reader), data.xq)


def test_patch_leaves_faiss_alone(tmp_path, data, patched):
    orig = faiss_ehi._originals
    for key, metric in (("IVF16,Flat", faiss.METRIC_L2),
                        ("PQ4", faiss.METRIC_L2),
                        ("Flat", faiss.METRIC_INNER_PRODUCT)):
        a = faiss.index_factory(data.d, key, metric)
        b = orig["index_factory"](data.d, key, metric)
        assert type(a) is type(b) and a.metric_type == b.metric_type
    index = faiss.index_factory(data.d, "IVF16,Flat")
    index.train(data.xt)
    index.add(data.xb)
    fname = str(tmp_path / "plain.index")
    faiss.write_index(index, fname)
    # a plain Faiss file, readable by the original reader
    with open(fname, "rb") as f:
        assert f.read(4) != faiss_ehi.MAGIC
    _same_results(index, orig["read_index"](fname), data.xq)
    _same_results(index, faiss.read_index(fname), data.xq)
    buf = faiss.serialize_index(index)
    np.testing.assert_array_equal(buf, orig["serialize_index"](index))
    _same_results(index, faiss.deserialize_index(buf), data.xq)
    assert type(faiss.clone_index(index)) is faiss.IndexIVFFlat
    # errors keep Faiss's type
    with pytest.raises(RuntimeError):
        faiss.read_index(str(tmp_path / "missing.index"))
    with pytest.raises(RuntimeError):
        faiss.index_factory(data.d, "NoSuchIndex")


def test_unpatch_restores():
    before = {n: getattr(faiss, n) for n in faiss_ehi._PATCHED}
    faiss_ehi.patch_faiss()
    faiss_ehi.patch_faiss()  # idempotent
    assert faiss.read_index is not before["read_index"]
    faiss_ehi.unpatch_faiss()
    for n, fn in before.items():
        assert getattr(faiss, n) is fn


# An unmodified script in the style of Faiss's benchs/bench_all_ivf: it
# only knows faiss.
FAISS_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import faiss

    key, fname = sys.argv[1], sys.argv[2]
    rs = np.random.RandomState(123)
    d = 32
    centres = rs.randn(50, d).astype('float32') * 4
    def sample(n):
        return (centres[rs.randint(0, 50, n)] +
                rs.randn(n, d).astype('float32')).astype('float32')
    xt, xb, xq = sample(5000), sample(10000), sample(200)
    gt = faiss.knn(xq, xb, 1)[1] if hasattr(faiss, 'knn') else None

    index = faiss.index_factory(d, key)
    t0 = time.time()
    index.train(xt)
    index.add(xb)
    print("build %.2f s" % (time.time() - t0))

    ps = faiss.ParameterSpace()
    ps.initialize(index)
    crit = faiss.OneRecallAtRCriterion(len(xq), 1)
    crit.set_groundtruth(None, gt)
    crit.nnn = 1
    op = ps.explore(index, xq, crit)
    op.display()
    best = op.optimal_pts.at(op.optimal_pts.size() - 1)
    ps.set_index_parameters(index, best.key)
    faiss.cvar.indexIVF_stats.reset()
    D, I = index.search(xq, 1)
    st = faiss.cvar.indexIVF_stats
    print("R@1 %.3f ndis %d nq %d" % ((I[:, 0] == gt[:, 0]).mean(),
                                      st.ndis, st.nq))
    assert st.nq == len(xq) and st.ndis > 0
    faiss.write_index(index, fname)
    index2 = faiss.read_index(fname)
    D2, I2 = index2.search(xq, 1)
    ivf2 = faiss.extract_index_ivf(index2)
    print("reloaded", type(index2).__name__, ivf2.nlist, ivf2.nprobe)
    assert (I2 == I).all()
    print("OK")
""")


def _run(args, env_extra=None, **kw):
    env = dict(os.environ, FAISS_EHI_TRAINER="kmeans")
    env.update(env_extra or {})
    return subprocess.run(args, capture_output=True, text=True, env=env,
                          timeout=300, **kw)


@pytest.mark.parametrize("key", ["EHI8x2,Flat", "IVF64,Flat"])
def test_faiss_script_with_runner(tmp_path, key):
    """python3 -m faiss_ehi script.py: the unmodified script runs."""
    script = tmp_path / "bench_style.py"
    script.write_text(FAISS_SCRIPT)
    r = _run([sys.executable, "-m", "faiss_ehi", str(script), key,
              str(tmp_path / "out.index")])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout
    assert "nprobe=" in r.stdout  # the explored operating points
    with open(tmp_path / "out.index", "rb") as f:
        magic = f.read(4)
    assert (magic == faiss_ehi.MAGIC) == key.startswith("EHI")


def test_faiss_script_in_process(tmp_path, patched):
    """import faiss_ehi; faiss_ehi.patch_faiss(); then the script."""
    fname = str(tmp_path / "out.index")
    old_argv = sys.argv
    sys.argv = ["bench_style.py", "EHI8x2,Flat", fname]
    try:
        exec(compile(FAISS_SCRIPT, "bench_style.py", "exec"), {})
    finally:
        sys.argv = old_argv
    assert os.path.getsize(fname) > 0


def test_env_switch(tmp_path):
    code = ("import faiss, faiss_ehi; "
            "print(faiss_ehi.is_patched(), "
            "type(faiss.index_factory(8, 'EHI2x2')).__name__)")
    r = _run([sys.executable, "-c", code], {"FAISS_EHI_PATCH": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "IndexIVFFlat"]
    r = _run([sys.executable, "-c", "import faiss_ehi; "
              "print(faiss_ehi.is_patched())"], {"FAISS_EHI_PATCH": "0"})
    assert r.stdout.split() == ["False"]
