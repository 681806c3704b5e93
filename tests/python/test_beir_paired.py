# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""benchs/beir_paired.py: paired gaps and their bootstrap interval on
hand-made runs (the layout bench_visited --json writes)."""

import importlib.util
import json
import pathlib
import random

ROOT = pathlib.Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "beir_paired", ROOT / "benchs" / "beir_paired.py")
beir_paired = importlib.util.module_from_spec(spec)
spec.loader.exec_module(beir_paired)


def run(ehi10, de10, with_per_query=True):
    """A run whose EHI and DE+IVF-Flat hold these per-query Recall@100
    values at 10% visited."""
    def point(values):
        p = {"visited": 0.1, "recall@100": sum(values) / len(values)}
        if with_per_query:
            p["per_query"] = {"recall@100": values}
        return p
    return {"methods": {"EHI": {"points": [point(ehi10)]},
                        "DE+IVF-Flat": {"points": [point(de10)]}}}


GAP = beir_paired.COMPARISONS[0]  # EHI 10% - DE+IVF-Flat 10%


def test_constant_gap_has_a_point_interval():
    runs = [run([0.5, 0.7, 0.2], [0.4, 0.6, 0.1]),
            run([0.3, 0.3, 0.9], [0.2, 0.2, 0.8])]
    rows = beir_paired.gaps(runs, GAP)
    assert len(rows) == 2 and len(rows[0]) == 3
    lo, hi, below = beir_paired.bootstrap(rows, random.Random(1), 200)
    assert abs(lo - 0.1) < 1e-12 and abs(hi - 0.1) < 1e-12
    assert below == 0.0


def test_interval_covers_the_mean_and_widens_with_spread():
    rng = random.Random(7)
    # per-query gaps of mean about +0.02 and spread 0.3: the interval
    # must hold the mean and zero
    a = [rng.random() for _ in range(40)]
    b = [x - 0.02 + rng.uniform(-0.3, 0.3) for x in a]
    rows = beir_paired.gaps([run(a, b)], GAP)
    mean = sum(rows[0]) / len(rows[0])
    lo, hi, below = beir_paired.bootstrap(rows, random.Random(2), 500)
    assert lo < mean < hi
    assert lo < 0 < hi
    assert 0 < below < 1


def test_runs_without_per_query_values_are_skipped(tmp_path):
    d = tmp_path / "cisi"
    d.mkdir()
    (d / "default_s1.json").write_text(json.dumps(run([0.5], [0.4])))
    (d / "default_s2.json").write_text(json.dumps(run([0.6], [0.3])))
    (d / "old_s1.json").write_text(
        json.dumps(run([0.5], [0.4], with_per_query=False)))
    (d / "not_a_seed_run.json").write_text(json.dumps(run([0.5], [0.4])))
    groups, skipped = beir_paired.load_groups([str(tmp_path)])
    assert sorted(groups) == ["cisi/default"]
    assert len(groups["cisi/default"]) == 2
    assert skipped == ["cisi/old_s1"]


def test_runs_of_different_query_counts_are_not_paired():
    runs = [run([0.5, 0.5], [0.4, 0.4]), run([0.5], [0.4])]
    assert beir_paired.gaps(runs, GAP) is None
