# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""Shared fixtures of the faiss_ehi Python tests (run by scripts/test.sh
with PYTHONPATH=build/python and Debian's /usr/bin/python3)."""

import pathlib

import numpy as np
import pytest

faiss = pytest.importorskip(
    "faiss", reason="python3-faiss is not installed (apt-get install "
    "python3-faiss); the faiss_ehi Python tests need it")
import faiss_ehi  # noqa: E402


def clustered(n, d, nclusters, seed):
    """n points of dimension d around nclusters Gaussian centres."""
    rs = np.random.RandomState(seed)
    centres = rs.randn(nclusters, d).astype("float32") * 4
    labels = rs.randint(0, nclusters, n)
    return (centres[labels] + rs.randn(n, d).astype("float32")).astype(
        "float32")


class Data:
    d = 24

    def __init__(self):
        self.xt = clustered(4000, self.d, 40, 1)
        self.xb = clustered(6000, self.d, 40, 2)
        self.xq = clustered(200, self.d, 40, 3)
        flat = faiss.IndexFlatL2(self.d)
        flat.add(self.xb)
        self.gt_D, self.gt_I = flat.search(self.xq, 10)


@pytest.fixture(scope="session")
def data():
    return Data()


@pytest.fixture(autouse=True)
def kmeans_trainer():
    """Most tests use the fast, deterministic k-means tree trainer; the
    trainer is process-wide, so every test starts from it."""
    faiss_ehi.set_trainer("kmeans")
    yield
    faiss_ehi.set_trainer("kmeans")


@pytest.fixture
def patched():
    """faiss patched for one test, and restored afterwards."""
    faiss_ehi.patch_faiss()
    yield faiss
    faiss_ehi.unpatch_faiss()


@pytest.fixture(scope="session")
def reference_program():
    """The C++ helper ehi_py_reference built beside the package
    (build/python/), or skip when faiss_ehi is an installed copy."""
    exe = pathlib.Path(faiss_ehi.__file__).resolve().parent.parent / \
        "ehi_py_reference"
    if not exe.exists():
        pytest.skip(f"C++ reference helper not found at {exe} (tests run "
                    "against an installed faiss_ehi)")
    return exe


def recall_at(I, gt, k=10):
    """Share of the true k nearest neighbours found in I[:, :k]."""
    return np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(I, gt)])
