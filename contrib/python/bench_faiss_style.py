#!/usr/bin/python3
# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""A Faiss benchmark, written the way Faiss's benchs/bench_all_ivf scripts
are, that only talks to faiss. EHI keys work because faiss is patched:

    python3 -m faiss_ehi contrib/python/bench_faiss_style.py \\
        --keys EHI64x2,Flat IVF4096,Flat

(or run it directly: it calls faiss_ehi.patch_faiss() itself when
faiss_ehi is importable). For each key: build (train + add), explore the
operating points of the search parameters with faiss.ParameterSpace
(nprobe, which for EHI is the beam), then report recall@1 and @10 and the
documents visited (faiss.cvar.indexIVF_stats.ndis) at each nprobe, and
write and re-read the index with faiss.write_index / faiss.read_index.

Data: Fashion-MNIST (Debian's dataset-fashion-mnist; 60,000 base = train
vectors, the first --nq test images as queries) or synthetic clustered
vectors (--db synthetic).
"""

import argparse
import gzip
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import faiss

try:  # not needed under `python3 -m faiss_ehi`, which patches first
    import faiss_ehi
    faiss_ehi.patch_faiss()
except ImportError:
    faiss_ehi = None

FMNIST = "/usr/share/datasets/fashion-mnist"


def load_idx_images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">i4")
    assert magic == 2051, f"{path}: not an idx3 image file"
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(
        n, rows * cols).astype("float32")


def load_data(args):
    if args.db == "fmnist":
        xb = load_idx_images(os.path.join(FMNIST,
                                          "train-images-idx3-ubyte.gz"))
        xq = load_idx_images(os.path.join(FMNIST,
                                          "t10k-images-idx3-ubyte.gz"))
        xq = xq[:args.nq]
        xt = xb
    else:
        rs = np.random.RandomState(args.seed)
        d = 64
        centres = rs.randn(1000, d).astype("float32") * 3

        def sample(n):
            return (centres[rs.randint(0, len(centres), n)] +
                    rs.randn(n, d).astype("float32"))
        xt, xb, xq = sample(args.nb), sample(args.nb), sample(args.nq)
    if args.maxtrain and len(xt) > args.maxtrain:
        xt = xt[np.random.RandomState(args.seed).choice(
            len(xt), args.maxtrain, replace=False)]
    return xt, xb, xq


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    aa = parser.add_argument
    aa("--db", default="fmnist", choices=["fmnist", "synthetic"])
    aa("--keys", nargs="+", default=["EHI64x2,Flat", "IVF4096,Flat"])
    aa("--nq", type=int, default=1000)
    aa("--nb", type=int, default=100000, help="synthetic only")
    aa("--maxtrain", type=int, default=0, help="0: all training vectors")
    aa("--seed", type=int, default=1234)
    aa("--nprobes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    aa("--indexfile", default="", help="folder for the written indexes")
    args = parser.parse_args()
    print("args:", args)

    t0 = time.time()
    xt, xb, xq = load_data(args)
    d = xb.shape[1]
    print(f"data {args.db}: xt {xt.shape} xb {xb.shape} xq {xq.shape} "
          f"({time.time() - t0:.1f} s)")

    t0 = time.time()
    _, gt = faiss.knn(xq, xb, 10)
    print(f"ground truth (exact 10-NN) in {time.time() - t0:.1f} s")

    outdir = args.indexfile or tempfile.mkdtemp(prefix="bench_faiss_style.")
    summary = {}
    for key in args.keys:
        print(f"\n======== {key}")
        index = faiss.index_factory(d, key)
        ivf = faiss.extract_index_ivf(index)
        print(f"{type(index).__name__}: nlist {ivf.nlist}, quantizer "
              f"{type(ivf.quantizer).__name__}")
        t0 = time.time()
        index.train(xt)
        t_train = time.time() - t0
        t0 = time.time()
        index.add(xb)
        t_add = time.time() - t0
        print(f"train {t_train:.1f} s, add {t_add:.1f} s")

        # Autotune the search parameters (nprobe) for 1-recall@1.
        ps = faiss.ParameterSpace()
        ps.initialize(index)
        crit = faiss.OneRecallAtRCriterion(len(xq), 1)
        crit.set_groundtruth(None, gt[:, :1].copy())
        crit.nnn = 1
        ps.verbose = 0
        t0 = time.time()
        op = ps.explore(index, xq, crit)
        print(f"ParameterSpace.explore: {ps.n_combinations()} combinations "
              f"in {time.time() - t0:.1f} s; operating points:")
        op.display()

        print(f"{'nprobe':>6} {'R@1':>6} {'R@10':>6} {'visited':>8} "
              f"{'ms/query':>8}")
        rows = []
        for nprobe in args.nprobes:
            if nprobe > ivf.nlist:
                break
            ps.set_index_parameter(index, "nprobe", nprobe)
            faiss.cvar.indexIVF_stats.reset()
            t0 = time.time()
            D, I = index.search(xq, 10)
            dt = time.time() - t0
            stats = faiss.cvar.indexIVF_stats
            r1 = float(np.mean(I[:, 0] == gt[:, 0]))
            r10 = float(np.mean([len(set(a) & set(b)) / 10
                                 for a, b in zip(I, gt)]))
            visited = stats.ndis / stats.nq / index.ntotal
            rows.append((nprobe, r1, r10, visited, 1000 * dt / len(xq)))
            print(f"{nprobe:6d} {r1:6.3f} {r10:6.3f} {visited:8.4f} "
                  f"{1000 * dt / len(xq):8.3f}")
        summary[key] = rows

        fname = os.path.join(outdir, key.replace(",", "_") + ".index")
        faiss.write_index(index, fname)
        with open(fname, "rb") as f:
            magic = f.read(4)
        index2 = faiss.read_index(fname)
        D2, I2 = index2.search(xq, 10)
        assert (I2 == I).all(), "the re-read index searches differently"
        print(f"written and re-read: {fname} ({os.path.getsize(fname)} "
              f"bytes, magic {magic!r}, {type(index2).__name__}), same "
              "results")

    # Side by side at equal fraction of the base visited.
    print("\n======== recall@10 against fraction visited")
    for key, rows in summary.items():
        print(f"{key:>16}: " + "  ".join(
            f"{v:.4f}:{r10:.3f}" for _, _, r10, v, _ in rows))
    if not args.indexfile:
        shutil.rmtree(outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
