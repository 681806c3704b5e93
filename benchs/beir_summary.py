#!/usr/bin/env python3
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
"""Summarise bench_visited runs on relevance data (run_beir_variants.sh).

Each run is a pair NAME.json (bench_visited --json) and NAME.txt (its log).
Prints one markdown row per run: the held-out Recall@100 at the training
beam (last tree epoch, from the log), EHI's load, and the test Recall@100 of
EHI and DE+IVF-Flat at 5/10/20% visited, exact search, and nDCG@10 at 100%
of EHI and the DE; then, for names NAME_sN (seeds), the mean and spread.

    python3 benchs/beir_summary.py DIR [DIR ...]

With --pooled DATA SPLIT_DIR [SPLIT_DIR ...] (each SPLIT_DIR holding
COLLECTION/VARIANT runs of one held-out split, COLLECTION a directory of
DATA): per variant, the held-out Recall@100 of each collection averaged
over the splits, and pooled over every held-out query of every split
(each collection weighted by its held-out queries: 30% of its training
queries, rounded down), which is what the default recipe is chosen by.
"""
import glob
import json
import os
import re
import statistics
import sys


def heldout(txt):
    """Held-out R@100 of EHI's last epoch (EHI trains before the DE)."""
    last = None
    with open(txt) as f:
        for line in f:
            if "siamese-only dual encoder" in line:
                break
            m = re.search(r"heldout R@100 (-?[0-9.]+)", line)
            if m and "JointTrainer: epoch" in line:
                last = float(m.group(1))
    return last


def at(method, visited, metric):
    for p in method["points"]:
        if abs(p["visited"] - visited) < 1e-9:
            return p[metric]
    return None


def row(base):
    with open(base + ".json") as f:
        d = json.load(f)
    m = d["methods"]
    ehi, de = m.get("EHI"), m.get("DE+IVF-Flat")
    best = m.get("DE+IVF-Flat best nlist")
    ex = m.get("exact")
    r = {
        "heldout": heldout(base + ".txt"),
        "expected": d["ehi_load"]["expected_over_ideal"],
        "largest": d["ehi_load"]["largest_over_ideal"],
        "empty": d["ehi_load"]["empty"],
        "train_s": d["train_seconds"].get("EHI"),
    }
    for v in (0.05, 0.1, 0.2):
        r["ehi%g" % v] = at(ehi, v, "recall@100")
        r["de%g" % v] = at(de, v, "recall@100") if de else None
        r["debest%g" % v] = at(best, v, "recall@100") if best else None
    r["exact"] = at(ex, 1, "recall@100") if ex else None
    r["ehi_ndcg"] = at(ehi, 1, "ndcg@10")
    r["de_ndcg"] = at(ex, 1, "ndcg@10") if ex else None
    return r


COLS = ["heldout", "ehi0.05", "ehi0.1", "de0.1", "debest0.1", "ehi0.2",
        "exact",
        "ehi_ndcg", "de_ndcg", "expected", "largest", "empty", "train_s"]


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return "%.3f" % v if abs(v) < 10 else "%.0f" % v


def main():
    print("| run | " + " | ".join(COLS) + " | gap@10% |")
    print("|---" * (len(COLS) + 2) + "|")
    groups = {}
    for d in sys.argv[1:]:
        for js in sorted(glob.glob(os.path.join(d, "*.json"))):
            base = js[:-5]
            if not os.path.exists(base + ".txt"):
                continue
            name = os.path.relpath(base)
            try:
                r = row(base)
            except (KeyError, ValueError, TypeError) as e:
                print("| %s | unreadable: %s |" % (name, e))
                continue
            gap = (r["ehi0.1"] - r["de0.1"]
                   if r["ehi0.1"] is not None and r["de0.1"] is not None
                   else None)
            r["gap"] = gap
            r["gap_best"] = (r["ehi0.1"] - r["debest0.1"]
                             if r["ehi0.1"] is not None and
                             r["debest0.1"] is not None else None)
            print("| %s | " % name + " | ".join(fmt(r[c]) for c in COLS) +
                  " | %s |" % (("%+.1f" % (100 * gap)) if gap is not None
                               else "-"))
            g = re.sub(r"_s[0-9]+$", "", name)
            groups.setdefault(g, []).append(r)
    print()
    print("| recipe (seeds) | EHI R@100 10% | DE+IVF 10% | gap (min) | "
          "DE+IVF best nlist 10% | gap to it (min) | "
          "EHI 20% | exact | EHI nDCG@10 | DE nDCG@10 | expected load (max) "
          "| empty |")
    print("|---" * 12 + "|")
    for g, rs in groups.items():
        if len(rs) < 2:
            continue

        def ms(key, scale=1.0):
            xs = [r[key] * scale for r in rs if r[key] is not None]
            if not xs:
                return "-"
            sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
            return "%.3f ± %.3f" % (statistics.mean(xs), sd)
        gaps = [100 * r["gap"] for r in rs if r["gap"] is not None]
        gb = [100 * r["gap_best"] for r in rs if r["gap_best"] is not None]
        def mean_min(xs):
            # a budget the curve cannot reach (e.g. routing counted on a
            # small collection) has no gap
            return ("%+.1f (%+.1f)" % (statistics.mean(xs), min(xs))
                    if xs else "-")
        print("| %s (%d) | %s | %s | %s | %s | %s | %s | %s | %s | %s | "
              "%.2f (%.2f) | %d |" % (
                  g, len(rs), ms("ehi0.1"), ms("de0.1"),
                  mean_min(gaps), ms("debest0.1"),
                  mean_min(gb), ms("ehi0.2"),
                  ms("exact"), ms("ehi_ndcg"), ms("de_ndcg"),
                  statistics.mean(r["expected"] for r in rs),
                  max(r["expected"] for r in rs),
                  max(r["empty"] for r in rs)))


def heldout_queries(collection_dir, fraction=0.3):
    queries = set()
    with open(os.path.join(collection_dir, "qrels", "train.tsv")) as f:
        next(f)  # header
        for line in f:
            if line.strip():
                queries.add(line.split("\t")[0])
    return int(fraction * len(queries))


def pooled(data, split_dirs):
    collections = sorted({os.path.basename(c) for d in split_dirs
                          for c in glob.glob(os.path.join(d, "*"))
                          if os.path.isdir(c)})
    weight = {c: heldout_queries(os.path.join(data, c)) for c in collections}
    variants = sorted({os.path.basename(j)[:-5] for d in split_dirs
                       for j in glob.glob(os.path.join(d, "*", "*.json"))})
    print("| variant | splits | " +
          " | ".join("%s held-out (%d queries)" % (c, weight[c])
                     for c in collections) + " | pooled |")
    print("|---" * (len(collections) + 3) + "|")
    for v in variants:
        per, total, n, splits = [], 0.0, 0, 0
        for c in collections:
            hs = []
            for d in split_dirs:
                txt = os.path.join(d, c, v + ".txt")
                h = heldout(txt) if os.path.exists(txt) else None
                if h is not None and h >= 0:  # -1: no tree epoch logged
                    hs.append(h)
            per.append("%.3f" % statistics.mean(hs) if hs else "-")
            total += weight[c] * sum(hs)
            n += weight[c] * len(hs)
            splits = max(splits, len(hs))
        print("| %s | %d | %s | %s |" % (v, splits, " | ".join(per),
                                        "%.3f" % (total / n) if n else "-"))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--pooled":
        pooled(sys.argv[2], sys.argv[3:])
    else:
        main()
