# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""The Python bindings give the same results as plain C++ faiss_ehi
(tests/python/ehi_py_reference.cpp, linked with Debian's libfaiss.a), and
files cross between the two."""

import subprocess

import numpy as np
import pytest

import faiss
import faiss_ehi


@pytest.mark.parametrize("key", ["EHI8x2,Flat", "EHI4x2,SQ8",
                                 "PCA16,EHI8x1,Flat"])
def test_same_results_as_cpp(tmp_path, data, reference_program, key):
    nprobe, k = 4, 10
    for name in ("xt", "xb", "xq"):
        getattr(data, name).tofile(tmp_path / name)
    out_index = tmp_path / "cpp.fehi"
    subprocess.run(
        [str(reference_program), key, str(data.d), str(nprobe), str(k),
         str(tmp_path / "xt"), str(tmp_path / "xb"), str(tmp_path / "xq"),
         str(tmp_path / "D"), str(tmp_path / "I"), str(out_index)],
        check=True, timeout=300)
    D_cpp = np.fromfile(tmp_path / "D", dtype="float32").reshape(-1, k)
    I_cpp = np.fromfile(tmp_path / "I", dtype="int64").reshape(-1, k)

    # The same build in Python (the same trainer and defaults as the helper)
    faiss_ehi.set_trainer("kmeans")
    index = faiss_ehi.index_factory(data.d, key)
    index.train(data.xt)
    index.add(data.xb)
    faiss.extract_index_ivf(index).nprobe = nprobe
    D_py, I_py = index.search(data.xq, k)
    # Same code, same data, same seeds; only the two builds of Faiss
    # (libfaiss.a, python3-faiss) could differ in the last float bits.
    assert np.mean(I_py == I_cpp) > 0.99
    np.testing.assert_allclose(D_py, D_cpp, rtol=1e-4, atol=1e-3)

    # The C++ file reads in Python and searches identically.
    from_cpp = faiss_ehi.read_index(str(out_index))
    D_f, I_f = from_cpp.search(data.xq, k)
    np.testing.assert_array_equal(I_f, I_cpp)
    np.testing.assert_allclose(D_f, D_cpp, rtol=1e-5, atol=1e-4)
