# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""faiss_ehi.distributed: leaf-owning shard files, and DistributedEHI on a
LocalCluster of worker processes giving exactly the single index's results,
through worker deaths.

One module-scoped cluster (3 worker processes, grown to 4 for the failure
tests) keeps the Dask start-up cost to one; the data are small."""

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import faiss
import faiss_ehi

from conftest import clustered

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed (apt-get "
    "install python3-distributed); the faiss_ehi.distributed tests need it")
from faiss_ehi import distributed as fd  # noqa: E402

K = 10


def _index(data, key="EHI8x2,Flat", metric=faiss.METRIC_L2, fill=True):
    index = faiss_ehi.index_factory(data.d, key, metric)
    index.train(data.xt)
    if fill:
        index.add(data.xb)
    return index


def assert_same(dist, index, xq, nprobe):
    """dist answers exactly as the single index at beam nprobe."""
    D0, I0 = index.search(xq, K, params=faiss.SearchParametersIVF(
        nprobe=nprobe))
    D1, I1 = dist.search(xq, K, nprobe=nprobe)
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_array_equal(D1, D0)


@pytest.fixture(scope="module")
def dup_data(data):
    """The shared data with exact duplicates, so that top-k boundaries
    hold ties and the merge must break them as the single index does."""
    class D:
        pass
    d = D()
    d.d, d.xt = data.d, data.xt
    d.xb = data.xb.copy()
    d.xb[100:112] = d.xb[50]
    d.xq = data.xq.copy()
    d.xq[:4] = d.xb[50]
    return d


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cl = distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=logging.CRITICAL,
        local_directory=str(tmp_path_factory.mktemp("dask")))
    client = distributed.Client(cl)
    yield cl, client
    client.close()
    cl.close()


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory, dup_data):
    index = _index(dup_data)
    out = tmp_path_factory.mktemp("shards")
    fd.shard(index, 6, out)
    return index, out


def test_shard_files_open_alone(shard_dir):
    index, out = shard_dir
    m = fd.load_manifest(out)
    assert m["n_shards"] == 6 and m["d"] == index.d
    assert sum(m["counts"]) == index.ntotal
    owner = np.array(m["leaf_to_shard"])
    sizes = np.array([index.invlists.list_size(l)
                      for l in range(index.nlist)])
    for s, f in enumerate(m["shards"]):
        part = faiss_ehi.read_index(str(out / f))
        assert isinstance(part, faiss.IndexIVFFlat)
        assert part.ntotal == m["counts"][s]
        got = np.array([part.invlists.list_size(l)
                        for l in range(part.nlist)])
        assert (got == np.where(owner == s, sizes, 0)).all()
    # Balanced: 8 subtrees (8 leaves each in EHI8x2) over 6 shards cannot
    # stay whole and balanced, so runs of leaves are cut, splitting at
    # most 5 subtrees, each over 2 shards.
    spans = [len(set(owner[g * 8:(g + 1) * 8])) for g in range(8)]
    assert max(spans) <= 2 and sum(s > 1 for s in spans) <= 5
    counts = np.array(m["counts"])
    assert counts.max() <= 1.3 * counts.mean()
    router = faiss_ehi.read_index(str(out / m["router"]))
    assert router.ntotal == 0 and router.is_trained


def test_contiguous_map_and_errors(data):
    index = _index(data)
    owner = fd.leaf_shard_map(index, 4, "contiguous")
    assert (np.diff(owner) >= 0).all() and set(owner) == {0, 1, 2, 3}
    # 8 subtrees on 2 shards: whole subtrees, 4 each when about equal.
    owner = fd.leaf_shard_map(index, 2, tolerance=1.5)
    assert all(len(set(owner[g * 8:(g + 1) * 8])) == 1 for g in range(8))
    # coprobe: whole subtrees, every shard used, and no more shards
    # touched on average than the balanced map at that beam.
    owner = fd.leaf_shard_map(index, 4, "coprobe", sample=data.xb[:2000],
                              nprobe=6)
    assert all(len(set(owner[g * 8:(g + 1) * 8])) == 1 for g in range(8))
    assert set(owner) == {0, 1, 2, 3}
    _, leaves = faiss_ehi.tree_quantizer(index).search(data.xq, 6)
    balanced = fd.leaf_shard_map(index, 4)

    def touched(m):
        return np.mean([len(set(r)) for r in m[leaves]])
    assert touched(owner) <= touched(balanced) + 0.25
    with pytest.raises(ValueError, match="needs a sample"):
        fd.leaf_shard_map(index, 4, "coprobe")
    with pytest.raises(ValueError, match="strategy"):
        fd.leaf_shard_map(index, 4, "random")
    with pytest.raises(ValueError, match="exceeds the 64 leaves"):
        fd.leaf_shard_map(index, 65)
    with pytest.raises(TypeError, match="EHI tree"):
        fd.shard(faiss.index_factory(data.d, "IVF8,Flat"), 2, "/nonexistent")
    with pytest.raises(FileNotFoundError, match="no manifest"):
        fd.load_manifest("/nonexistent")


def test_coprobe_leaves_map(data):
    """Leaf-level co-probe placement: every leaf on one shard, every shard
    used, documents within the tolerance, and no more shards touched than
    the subtree strategies at that beam (queries unseen by the map)."""
    index = _index(data)
    sizes = np.array([index.invlists.list_size(l)
                      for l in range(index.nlist)])
    owner = fd.leaf_shard_map(index, 4, "coprobe_leaves",
                              sample=data.xb[:2000], nprobe=6)
    assert owner.shape == (index.nlist,) and set(owner) == {0, 1, 2, 3}
    load = np.bincount(owner, weights=sizes, minlength=4)
    assert load.max() <= 1.05 * sizes.sum() / 4 + 1
    _, leaves = faiss_ehi.tree_quantizer(index).search(data.xq, 6)
    t_leaves = fd.shards_touched(leaves, owner, 4)
    assert t_leaves.shape == (len(data.xq),) and t_leaves.min() >= 1
    # Against "coprobe" with slack: on these few, even subtrees, whole
    # subtrees at 1.15 x the mean can do as well as leaves at 1.05 x.
    for other, slack in (("balanced", 0), ("coprobe", 0.25)):
        o = fd.leaf_shard_map(index, 4, other, sample=data.xb[:2000],
                              nprobe=6)
        assert t_leaves.mean() <= \
            fd.shards_touched(leaves, o, 4).mean() + slack
    # the helper counts distinct owners per row, ignoring -1 padding
    np.testing.assert_array_equal(
        fd.shards_touched([[0, 1, -1], [2, 2, 2]], [0, 1, 1], 2), [2, 1])
    with pytest.raises(ValueError, match="needs a sample"):
        fd.leaf_shard_map(index, 4, "coprobe_leaves")


def test_default_strategy_and_rounds(data):
    """No strategy named: coprobe_leaves with a sample and a beam,
    balanced without. The perturbation rounds keep a map only when the
    sample's mean shards touched drops, so they never do worse on it
    than the refined seeds alone (rounds=0), and stay within the cap."""
    index = _index(data)
    sample = data.xb[:2000]
    assert fd.default_strategy() == "balanced"
    assert fd.default_strategy(sample, 6) == "coprobe_leaves"
    np.testing.assert_array_equal(fd.leaf_shard_map(index, 4),
                                  fd.leaf_shard_map(index, 4, "balanced"))
    np.testing.assert_array_equal(
        fd.leaf_shard_map(index, 4, sample=sample, nprobe=6),
        fd.leaf_shard_map(index, 4, "coprobe_leaves", sample=sample,
                          nprobe=6))
    _, routed = faiss_ehi.tree_quantizer(index).search(sample, 6)
    sizes = np.array([index.invlists.list_size(l)
                      for l in range(index.nlist)])
    means = {}
    for rounds in (0, 30):
        owner = fd.leaf_shard_map(index, 4, "coprobe_leaves", sample=sample,
                                  nprobe=6, rounds=rounds)
        means[rounds] = fd.shards_touched(routed, owner, 4).mean()
        load = np.bincount(owner, weights=sizes, minlength=4)
        assert load.max() <= 1.05 * sizes.sum() / 4 + 1
    assert means[30] <= means[0]
    with pytest.raises(ValueError, match="rounds"):
        fd.leaf_shard_map(index, 4, "coprobe_leaves", sample=sample,
                          nprobe=6, rounds=-1)


def test_exact_coprobe_leaves(cluster, dup_data, tmp_path):
    """Placement changes only which shard scans a leaf: 6 coprobe_leaves
    shards answer exactly as the single index, ties included."""
    _, client = cluster
    index = _index(dup_data)
    m = fd.shard(index, 6, tmp_path, strategy="coprobe_leaves",
                 sample=dup_data.xb[::3], nprobe=4)
    assert m["strategy"] == "coprobe_leaves"
    counts = np.array(m["counts"])
    assert sum(counts) == index.ntotal and (counts > 0).all()
    assert counts.max() <= 1.05 * index.ntotal / 6 + 1
    dist = fd.DistributedEHI(client, tmp_path, batch_size=64)
    for nprobe in (1, 4, 64):
        assert_same(dist, index, dup_data.xq, nprobe)
    dist.close()


@pytest.mark.skipif(not faiss_ehi.has_torch, reason="an index with d2l > "
                    "1 comes from train_pairs, which needs the LibTorch "
                    "trainer (this faiss_ehi was built without it)")
@pytest.mark.parametrize("d2l,strategy,via_add", [
    (2, "balanced", False), (3, "coprobe_leaves", False),
    # Through add: the worker files each id with add_core in the lists the
    # client gives, which must mark the shard's lists as holding
    # duplicates (before that mark, 74 of 200 queries differed at nprobe
    # 4: a shard scanned an id twice and kept fewer than k ids).
    (2, "balanced", True)])
def test_exact_d2l(cluster, dup_data, tmp_path, d2l, strategy, via_add):
    """d2l > 1 stores each document in several leaves, which may belong to
    different shards: an id can then come back from two shards, and the
    merge must return it once, as the single index does (ties included:
    dup_data holds exact duplicates). Also through DistributedEHI.add,
    which must file each document in its d2l leaves' shards."""
    _, client = cluster
    xb = dup_data.xb
    # Relevance pairs: noisy copies of documents, each with its nearest
    # document (only the tree's shape matters here, not its quality).
    rng = np.random.default_rng(3)
    q = xb[:1500] + 0.05 * rng.standard_normal(
        (1500, dup_data.d)).astype(np.float32)
    flat = faiss.IndexFlatL2(dup_data.d)
    flat.add(xb)
    _, nn = flat.search(q, 1)
    pairs = np.stack([np.arange(len(q)), nn[:, 0]], 1).astype(np.int64)
    index = faiss_ehi.train_pairs(q, xb, pairs, B=8, H=2, epochs=2, d2l=d2l,
                                  progress=False, threads=1)
    if via_add:
        m = fd.shard(index, 6, tmp_path, strategy=strategy)
        index.add(xb)
        dist = fd.DistributedEHI(client, tmp_path, batch_size=64)
        dist.add(xb)
    else:
        index.add(xb)
        m = fd.shard(index, 6, tmp_path, strategy=strategy,
                     sample=xb[::3], nprobe=4)
        assert sum(m["counts"]) == d2l * len(xb)
        dist = fd.DistributedEHI(client, tmp_path, batch_size=64)
    for nprobe in (1, 4, 64):
        assert_same(dist, index, dup_data.xq, nprobe)
    dist.close()


@pytest.mark.parametrize("metric", [faiss.METRIC_L2,
                                    faiss.METRIC_INNER_PRODUCT])
def test_exact_with_ties_across_leaves(cluster, tmp_path, metric):
    """Small integer coordinates: many distinct vectors at equal distance
    from a query, in different leaves and so in different shards. The
    merge must pick among them as the single index does (by id), not by
    the order in which the shards answer."""
    _, client = cluster
    rng = np.random.default_rng(5)
    xb = rng.integers(0, 4, size=(3000, 6)).astype(np.float32)
    xq = rng.integers(0, 4, size=(200, 6)).astype(np.float32)
    index = faiss_ehi.index_factory(6, "EHI8x2,Flat", metric)
    index.train(xb)
    index.add(xb)
    D0, _ = index.search(xq, K, params=faiss.SearchParametersIVF(nprobe=8))
    assert (D0[:, :-1] == D0[:, 1:]).sum() > 500  # the data do tie
    fd.shard(index, 6, tmp_path, strategy="contiguous")
    dist = fd.DistributedEHI(client, tmp_path, batch_size=64)
    for nprobe in (2, 8, 64):
        assert_same(dist, index, xq, nprobe)
    dist.close()


def test_exact_on_three_workers(cluster, shard_dir, dup_data):
    """3 worker processes, 6 shards: ids and distances equal the single
    index's at every beam, ties included."""
    _, client = cluster
    index, out = shard_dir
    dist = fd.DistributedEHI(client, out, batch_size=64)
    assert len({w for ws in dist.placement.values() for w in ws}) == 3
    for nprobe in (1, 3, 8, 64):
        assert_same(dist, index, dup_data.xq, nprobe)
        touched = dist.stats["touched"]
        assert touched.min() >= 1 and touched.max() <= 6
    assert dist.stats["touched"].mean() == 6  # nprobe 64: every leaf
    # params, as the local index takes them
    D2, I2 = dist.search(dup_data.xq, K,
                         params=faiss.SearchParametersIVF(nprobe=3))
    D0, I0 = index.search(dup_data.xq, K,
                          params=faiss.SearchParametersIVF(nprobe=3))
    np.testing.assert_array_equal(I2, I0)
    with pytest.raises(ValueError, match="max_codes"):
        dist.search(dup_data.xq, K,
                    params=faiss.SearchParametersIVF(nprobe=3, max_codes=5))
    dist.close()


@pytest.mark.parametrize("key, metric", [
    ("EHI8x2,SQ8", faiss.METRIC_L2),
    ("EHI8x2,Flat", faiss.METRIC_INNER_PRODUCT),
])
def test_exact_other_codecs(cluster, data, key, metric):
    _, client = cluster
    index = _index(data, key, metric)
    dist = fd.DistributedEHI(client, index, n_shards=5)
    assert_same(dist, index, data.xq, 6)
    dist.close()


def test_add_routes_to_owners(cluster, data, tmp_path):
    """An empty trained index, sharded, then filled through add: same
    results as the index filled locally."""
    _, client = cluster
    empty = _index(data, fill=False)
    full = faiss_ehi.clone_index(empty)
    full.add(data.xb)
    fd.shard(empty, 4, tmp_path)
    dist = fd.DistributedEHI(client, tmp_path)
    dist.add(data.xb[:2500])
    dist.add(data.xb[2500:])
    assert dist.ntotal == full.ntotal
    assert_same(dist, full, data.xq, 5)
    dist.close()


def _pid(client, worker):
    return client.run(os.getpid, workers=[worker])[worker]


def _four_workers(cluster):
    cl, client = cluster
    if len(client.scheduler_info()["workers"]) < 4:
        cl.scale(4)
    client.wait_for_workers(4, timeout=60)
    return client


@pytest.mark.parametrize("replicas", [2, 1])
def test_worker_killed_mid_run(cluster, shard_dir, dup_data, replicas):
    """One of 4 workers SIGKILLed during a run: no query is lost and the
    results are the same (a replica answers, or the shard is re-loaded
    on a live worker)."""
    client = _four_workers(cluster)
    index, out = shard_dir
    xq = np.vstack([dup_data.xq] * 3)
    dist = fd.DistributedEHI(client, out, replicas=replicas, batch_size=16,
                             poll=0.2)
    D0, I0 = index.search(xq, K, params=faiss.SearchParametersIVF(nprobe=4))
    victim = dist.workers_of(0)[0]
    pid = _pid(client, victim)
    killed = threading.Event()

    def killer():
        deadline = time.time() + 30
        while dist.stats["batches_done"] < 3 and time.time() < deadline:
            time.sleep(0.002)
        os.kill(pid, signal.SIGKILL)
        killed.set()

    th = threading.Thread(target=killer)
    th.start()
    D1, I1 = dist.search(xq, K, nprobe=4)
    done_before_kill = not killed.is_set()
    th.join()
    np.testing.assert_array_equal(I1, I0)
    np.testing.assert_array_equal(D1, D0)
    assert not done_before_kill, "the run ended before the worker was killed"
    # A later run, after the loss, is still complete and equal.
    client.wait_for_workers(4, timeout=60)
    D2, I2 = dist.search(xq, K, nprobe=4)
    np.testing.assert_array_equal(I2, I0)
    assert all(victim not in dist.workers_of(s) for s in range(6))
    dist.close()


def test_lost_shard_is_an_error(cluster, shard_dir, dup_data):
    client = _four_workers(cluster)
    index, out = shard_dir
    dist = fd.DistributedEHI(client, out, reload_lost=False, poll=0.2)
    victim = dist.workers_of(2)[0]
    lost = sorted(s for s in range(6) if victim in dist.workers_of(s))
    os.kill(_pid(client, victim), signal.SIGKILL)
    deadline = time.time() + 30
    while victim in client.scheduler_info()["workers"] and \
            time.time() < deadline:
        time.sleep(0.1)
    with pytest.raises(fd.ShardLostError,
                       match=rf"shard {lost[0]} \(.*shard-00{lost[0]}.fehi\)"
                             r": every replica is lost"):
        dist.search(dup_data.xq, K, nprobe=64)
    D, I, incomplete = dist.search(dup_data.xq, K, nprobe=4,
                                   allow_partial=True)
    _, shard_of = dist.route(dup_data.xq, 4)[2:]
    expect = np.isin(shard_of, lost).any(axis=1)
    np.testing.assert_array_equal(incomplete, expect)
    D0, I0 = index.search(dup_data.xq, K,
                          params=faiss.SearchParametersIVF(nprobe=4))
    np.testing.assert_array_equal(I[~incomplete], I0[~incomplete])
    client.wait_for_workers(4, timeout=60)


def test_command_line(cluster, shard_dir, dup_data, tmp_path):
    """`shard` cuts a file; `serve --queries` answers from the cluster."""
    _, client = cluster
    index, _ = shard_dir
    path = tmp_path / "index.fehi"
    faiss_ehi.write_index(index, str(path))
    env = dict(os.environ)
    run = [sys.executable, "-m", "faiss_ehi.distributed"]
    r = subprocess.run(run + ["shard", str(path), str(tmp_path / "s"),
                              "--n-shards", "3"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "3 shards" in r.stdout
    np.save(tmp_path / "sample.npy", dup_data.xb[::4])
    r = subprocess.run(run + ["shard", str(path), str(tmp_path / "c"),
                              "--n-shards", "3", "--strategy",
                              "coprobe_leaves", "--sample",
                              str(tmp_path / "sample.npy"), "--nprobe", "4"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert fd.load_manifest(tmp_path / "c")["strategy"] == "coprobe_leaves"
    r = subprocess.run(run + ["shard", str(path), str(tmp_path / "e"),
                              "--n-shards", "3", "--strategy", "coprobe"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "needs --sample" in r.stderr
    np.save(tmp_path / "q.npy", dup_data.xq)
    r = subprocess.run(run + ["serve", "--scheduler",
                              client.scheduler.address, "--shards",
                              str(tmp_path / "s"), "--queries",
                              str(tmp_path / "q.npy"), "--nprobe", "4",
                              "--out", str(tmp_path / "r.npz")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = np.load(tmp_path / "r.npz")
    D0, I0 = index.search(dup_data.xq, K,
                          params=faiss.SearchParametersIVF(nprobe=4))
    np.testing.assert_array_equal(res["I"], I0)
    np.testing.assert_array_equal(res["D"], D0)


def test_serve_publishes_for_attach(cluster, shard_dir, dup_data):
    """`serve` without --queries keeps the shards loaded and published;
    another client attaches to them without loading anything."""
    _, client = cluster
    index, out = shard_dir
    proc = subprocess.Popen(
        [sys.executable, "-m", "faiss_ehi.distributed", "serve",
         "--scheduler", client.scheduler.address, "--shards", str(out),
         "--name", "test-serve"], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "published as" in line:
                break
        else:
            pytest.fail(f"serve exited with {proc.wait()} before publishing")
        dist = fd.DistributedEHI.attach(client, "test-serve")
        assert_same(dist, index, dup_data.xq, 4)
        with pytest.raises(KeyError, match="no DistributedEHI published"):
            fd.DistributedEHI.attach(client, "nothing-here")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
