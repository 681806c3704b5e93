# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""python3 -m faiss_ehi.distributed {shard,serve} ...

- ``shard INDEX DIR --n-shards N``: cut a faiss_ehi index file into
  leaf-owning shard files and a manifest in DIR (faiss_ehi.distributed.shard);
- ``serve --scheduler ADDR --shards DIR``: load DIR's shards on the workers
  of the Dask cluster at ADDR, publish them under --name for other clients
  (DistributedEHI.attach), and keep them served: a lost shard is re-loaded
  on a live worker. With --queries the queries are answered and written to
  --out instead, then the command exits.
"""

import argparse
import sys
import time

import numpy as np


def _read_queries(path):
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith(".fvecs"):
        raw = np.fromfile(path, dtype=np.int32)
        d = int(raw[0])
        return raw.reshape(-1, d + 1)[:, 1:].view(np.float32).copy()
    raise SystemExit(f"--queries {path}: expected a .npy or .fvecs file")


def _cmd_shard(args):
    import faiss_ehi
    from faiss_ehi import distributed as fd
    index = faiss_ehi.read_index(args.index)
    sample = None
    if args.strategy is None:
        # As fd.shard: the leaf-level co-probe placement when a sample and
        # the beam are given, else balanced (which needs neither).
        args.strategy = fd.default_strategy(args.sample, args.nprobe)
    if args.strategy in ("coprobe", "coprobe_leaves"):
        # The co-probe strategies place leaves by how a sample's beams
        # spread; they must not be fitted on the queries they will be
        # measured on, so the sample is the user's choice of file.
        if not args.sample or not args.nprobe:
            raise SystemExit(f"--strategy {args.strategy} needs --sample "
                             "(documents or held-out queries, .npy or "
                             ".fvecs) and --nprobe (the serving beam)")
        sample = _read_queries(args.sample)
    m = fd.shard(index, args.n_shards, args.dir, replicas=args.replicas,
                 strategy=args.strategy, sample=sample, nprobe=args.nprobe,
                 tolerance=args.tolerance)
    print(f"{m['n_shards']} shards of {args.index} ({m['ntotal']} vectors, "
          f"{m['nlist']} leaves) in {m['dir']}: documents per shard "
          f"{m['counts']}")
    return 0


def _cmd_serve(args):
    from distributed import Client
    from faiss_ehi import distributed as fd
    client = Client(args.scheduler, timeout=args.timeout)
    if args.workers:
        client.wait_for_workers(args.workers, timeout=args.timeout)
    dist = fd.DistributedEHI(client, args.shards, replicas=args.replicas)
    print(f"serving {dist.n_shards} shards of {args.shards} on "
          f"{len(client.scheduler_info()['workers'])} workers "
          f"(replicas {dist.replicas})", flush=True)
    for s in range(dist.n_shards):
        print(f"  shard {s}: {', '.join(dist.workers_of(s))}")
    if args.queries:
        xq = _read_queries(args.queries)
        t0 = time.time()
        D, I = dist.search(xq, args.k, nprobe=args.nprobe)
        dt = time.time() - t0
        touched = dist.stats["touched"]
        np.savez(args.out, D=D, I=I, touched=touched)
        print(f"{len(xq)} queries in {dt:.2f} s ({len(xq) / dt:.0f} QPS), "
              f"shards touched per query {touched.mean():.2f}; wrote "
              f"{args.out}")
        return 0
    dist.publish(args.name)
    print(f"published as {args.name!r}: DistributedEHI.attach(client, "
          f"{args.name!r}); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(args.check_every)
            live = dist._live()
            if dist._forget_dead(live):
                for s in range(dist.n_shards):
                    if not dist.placement[s]:
                        w = dist._replace_lost(s, live)
                        print(f"shard {s} re-loaded on {w}", flush=True)
                dist.publish(args.name)
    except KeyboardInterrupt:
        dist.close()
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python3 -m faiss_ehi.distributed",
        description="Cut a faiss_ehi index into leaf-owning shards (shard) "
                    "and serve them from a Dask cluster (serve).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("shard", help="cut an index file into shard files")
    p.add_argument("index", help="a faiss_ehi index file (trained)")
    p.add_argument("dir", help="output directory (shards + manifest.json)")
    p.add_argument("--n-shards", type=int, required=True)
    p.add_argument("--replicas", type=int, default=1,
                   help="default copies per shard recorded in the manifest")
    p.add_argument("--strategy", default=None,
                   choices=["balanced", "contiguous", "coprobe",
                            "coprobe_leaves"],
                   help="leaf placement (see leaf_shard_map); the coprobe "
                        "ones need --sample and --nprobe. Default: "
                        "coprobe_leaves with --sample and --nprobe, "
                        "balanced without")
    p.add_argument("--sample", help=".npy or .fvecs rows routed to "
                   "estimate which leaves are probed together (documents or "
                   "held-out queries, never the test queries)")
    p.add_argument("--nprobe", type=int, default=None,
                   help="the beam the sample is routed at (the serving "
                        "beam)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="most documents per shard, times the mean "
                        "(default 1.15; 1.05 for coprobe_leaves)")
    p = sub.add_parser("serve", help="serve a shard directory from a Dask "
                       "cluster")
    p.add_argument("--scheduler", required=True,
                   help="scheduler address, e.g. tcp://10.0.0.1:8786")
    p.add_argument("--shards", required=True,
                   help="directory written by `shard`, at the same path on "
                        "every worker's host")
    p.add_argument("--replicas", type=int, default=None)
    p.add_argument("--workers", type=int, default=0,
                   help="wait for this many workers first")
    p.add_argument("--name", default="faiss_ehi",
                   help="name to publish the served index under")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--check-every", type=float, default=2.0)
    p.add_argument("--queries", help=".npy or .fvecs queries to answer")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--nprobe", type=int, default=None)
    p.add_argument("--out", default="results.npz")
    args = ap.parse_args(argv)
    return _cmd_shard(args) if args.cmd == "shard" else _cmd_serve(args)


if __name__ == "__main__":
    sys.exit(main())
