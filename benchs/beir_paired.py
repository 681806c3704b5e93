#!/usr/bin/env python3
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
"""Paired comparisons of bench_visited runs on relevance data, query by
query, with bootstrap confidence intervals.

A gap between EHI and a baseline on one seed mixes three things: the
methods, the seed's training, and which test queries the collection has
(CISI has 38, MEDLINE 15). Each run's JSON holds every test query's
Recall@100 and nDCG@10 at the fixed fractions visited (bench_visited
--json, "per_query"), so the gap can be taken per query and seed, and its
uncertainty estimated by resampling both: seeds with replacement, and the
test queries with replacement (the same draw for every seed, since every
seed is scored on the same queries). The interval is the 2.5th to 97.5th
percentile of the mean gap over the draws (2,000, a fixed seed).

    python3 benchs/beir_paired.py DIR [DIR ...]

reads DIR/*/NAME_sN.json (run_beir_seeds.sh's layout) or DIR/NAME_sN.json,
groups the runs by NAME (and directory) and prints one markdown row per
group and comparison. Runs written before per-query values existed are
skipped with a note.
"""
import glob
import json
import os
import random
import re
import sys

DRAWS = 2000

# (label, method A, visited A, method B, visited B, metric)
COMPARISONS = [
    ("EHI 10% - DE+IVF-Flat 10%", "EHI", 0.1, "DE+IVF-Flat", 0.1,
     "recall@100"),
    ("EHI 10% - DE+IVF-Flat best nlist 10%", "EHI", 0.1,
     "DE+IVF-Flat best nlist", 0.1, "recall@100"),
    ("EHI 10% - IVF-Flat over EHI's encoder 10%", "EHI", 0.1, "IVF-Flat",
     0.1, "recall@100"),
    ("EHI 20% - exact (DE)", "EHI", 0.2, "exact", 1.0, "recall@100"),
    # what no routing over EHI's encoder can exceed: its own exhaustive
    # search, against the two baselines above
    ("EHI 100% - DE+IVF-Flat 10%", "EHI", 1.0, "DE+IVF-Flat", 0.1,
     "recall@100"),
    ("EHI 100% - exact (DE)", "EHI", 1.0, "exact", 1.0, "recall@100"),
    ("EHI 100% - exact (DE), nDCG@10", "EHI", 1.0, "exact", 1.0,
     "ndcg@10"),
]


def per_query(run, method, visited, metric):
    """The per-query values of `method` at `visited`, or None."""
    m = run["methods"].get(method)
    if m is None:
        return None
    for p in m["points"]:
        if abs(p["visited"] - visited) < 1e-9:
            return p.get("per_query", {}).get(metric)
    return None


def gaps(runs, comp):
    """One row of per-query gaps (A - B) per run; None if a run lacks
    them or the runs disagree on the number of test queries."""
    _, ma, va, mb, vb, metric = comp
    rows = []
    for r in runs:
        a = per_query(r, ma, va, metric)
        b = per_query(r, mb, vb, metric)
        if a is None or b is None or len(a) != len(b):
            return None
        rows.append([x - y for x, y in zip(a, b)])
    if len({len(g) for g in rows}) != 1:
        return None
    return rows


def bootstrap(rows, rng, draws=DRAWS):
    """Percentile interval of the mean gap, seeds and queries resampled."""
    ns, nq = len(rows), len(rows[0])
    means = []
    for _ in range(draws):
        seed_count = [0] * ns
        for _ in range(ns):
            seed_count[rng.randrange(ns)] += 1
        query_count = [0] * nq
        for _ in range(nq):
            query_count[rng.randrange(nq)] += 1
        total = 0.0
        for s in range(ns):
            if seed_count[s]:
                row = rows[s]
                total += seed_count[s] * sum(
                    c * g for c, g in zip(query_count, row) if c)
        means.append(total / (ns * nq))
    means.sort()
    lo = means[int(0.025 * draws)]
    hi = means[min(draws - 1, int(0.975 * draws))]
    below = sum(1 for m in means if m <= 0) / draws
    return lo, hi, below


def load_groups(dirs):
    groups, skipped = {}, []
    for d in dirs:
        files = sorted(glob.glob(os.path.join(d, "*.json")) +
                       glob.glob(os.path.join(d, "*", "*.json")))
        for js in files:
            # COLLECTION/NAME: the run's directory and file name
            name = os.path.join(os.path.basename(os.path.dirname(js)),
                                os.path.basename(js)[:-5])
            g = re.sub(r"_s[0-9]+$", "", name)
            if g == name:
                continue  # not a seed run
            try:
                with open(js) as f:
                    run = json.load(f)
            except (OSError, ValueError) as e:
                print("unreadable %s: %s" % (js, e), file=sys.stderr)
                continue
            if per_query(run, "EHI", 0.1, "recall@100") is None:
                skipped.append(name)
                continue
            groups.setdefault(g, []).append(run)
    return groups, skipped


def main(dirs):
    if not dirs:
        sys.exit(__doc__)
    groups, skipped = load_groups(dirs)
    if skipped:
        print("(no per-query values, skipped: %s)\n" % ", ".join(skipped))
    if not groups:
        sys.exit("no run with per-query values under %s" % " ".join(dirs))
    print("| runs (seeds, test queries) | comparison | mean gap, points "
          "| 95% interval | seeds ahead | draws <= 0 |")
    print("|---|---|---|---|---|---|")
    rng = random.Random(20261204)
    for g, runs in sorted(groups.items()):
        for comp in COMPARISONS:
            rows = gaps(runs, comp)
            if rows is None:
                continue
            seed_means = [sum(r) / len(r) for r in rows]
            mean = sum(seed_means) / len(seed_means)
            lo, hi, below = bootstrap(rows, rng)
            ahead = sum(1 for m in seed_means if m > 0)
            print("| %s (%d, %d) | %s | %+.1f | %+.1f to %+.1f | %d of %d "
                  "| %.3f |" % (g, len(rows), len(rows[0]), comp[0],
                                100 * mean, 100 * lo, 100 * hi, ahead,
                                len(rows), below))


if __name__ == "__main__":
    main(sys.argv[1:])
