# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""DistributedEHI: the client that routes, submits and merges."""

import os
import pathlib
import time
import uuid

import numpy as np

import faiss

import faiss_ehi

from .common import ShardLostError, ShardNotLoadedError, _FLT_MAX
from .placement import _ivf_parts, leaf_shard_map
from .sharding import load_manifest, shard
from .worker import _add_to_shard, _drop_shard, _load_shard, _scan_shard
from .merge import _merge


class DistributedEHI:
    """An EHI index served by leaf-owning shards on Dask workers.

    ``DistributedEHI(client, source, replicas=None, ...)`` where `source`
    is a directory written by :func:`shard` (or its manifest dict), or an
    EHI index, which is then cut into `n_shards` shards in memory and sent
    to the workers (the client keeps the serialised shards to re-load a
    lost one; a directory is read by the workers themselves, so it must be
    visible to each of them at the same path).

    - ``replicas``: copies of each shard, on different workers (default:
      the manifest's, 1 for an index);
    - ``reload_lost``: when every replica of a shard is gone, load it on a
      live worker (default True); with False the shard is lost;
    - ``poll``: seconds between checks of which workers are alive;
    - ``batch_size``: queries per task (one task per batch and shard);
    - ``gather_timeout``: seconds to fetch a finished task's result before
      it is taken as lost with its worker and run again elsewhere.

    ``search(x, k, nprobe=None, params=None, allow_partial=False)`` returns
    (D, I) like the local index at the same beam, equal to it exactly;
    with ``allow_partial=True`` it returns (D, I, incomplete), a boolean
    mask of the queries a lost shard left incomplete. ``stats`` holds the
    shards touched per query of the last search and the failure counts.
    """

    def __init__(self, client, source, replicas=None, n_shards=None,
                 strategy="balanced", reload_lost=True, poll=0.5,
                 batch_size=2048, gather_timeout=5.0, _attach=None):
        self.client = client
        self.gather_timeout = float(gather_timeout)
        self.reload_lost = bool(reload_lost)
        self.poll = float(poll)
        self.batch_size = faiss_ehi._check_int(batch_size, "batch_size", 1)
        self._token = uuid.uuid4().hex[:12]
        self.manifest = None
        if _attach is not None:
            # Shards already placed by another client (see attach()).
            self._token = _attach["token"]
            self._init_from_manifest(_attach["manifest"])
            self.replicas = _attach["replicas"]
            self.placement = {int(s): list(ws) for s, ws in
                              _attach["placement"].items()}
            self._added = {s: [] for s in range(self.n_shards)}
            self._reset_stats()
            return
        if isinstance(source, faiss.Index):
            self._init_from_index(source, n_shards or 2, strategy)
            default_replicas = 1
        else:
            m = source if isinstance(source, dict) else load_manifest(source)
            self._init_from_manifest(m)
            default_replicas = m.get("replicas", 1)
        self.replicas = faiss_ehi._check_int(
            default_replicas if replicas is None else replicas, "replicas", 1)
        self._reset_stats()
        self.placement = {s: [] for s in range(self.n_shards)}
        self._added = {s: [] for s in range(self.n_shards)}
        self._place()

    # ---------------------------------------------------------- set-up
    def _reset_stats(self):
        self.stats = {"touched": None, "retries": 0, "reloads": 0,
                      "workers_lost": 0, "batches_done": 0}

    def publish(self, name):
        """Publish the placement on the scheduler under `name`, so that
        other clients use the loaded shards (DistributedEHI.attach). Only
        for shards read from a directory (the workers can re-read them)."""
        if self.manifest is None:
            raise ValueError("publish: only shards loaded from a shard "
                             "directory can be published (an in-memory "
                             "index's shards live in this client)")
        state = {"token": self._token, "manifest": self.manifest,
                 "replicas": self.replicas,
                 "placement": {str(s): ws for s, ws in
                               self.placement.items()}}
        # override: serve publishes again after re-loading a lost shard.
        self.client.publish_dataset(state, name=name, override=True)

    @classmethod
    def attach(cls, client, name, **kw):
        """The DistributedEHI that `serve` (or publish(name)) placed on the
        cluster of `client`; nothing is loaded again."""
        try:
            state = client.get_dataset(name)
        except KeyError:
            raise KeyError(f"no DistributedEHI published as {name!r} on "
                           f"{client.scheduler.address} (is `python3 -m "
                           "faiss_ehi.distributed serve` running?)") from None
        return cls(client, None, _attach=state, **kw)

    def _init_from_manifest(self, m):
        self.manifest = m
        d = pathlib.Path(m["dir"])
        self.router = faiss_ehi.read_index(str(d / m["router"]))
        self.n_shards = int(m["n_shards"])
        self.sources = [str(d / f) for f in m["shards"]]
        self.leaf_to_shard = np.asarray(m["leaf_to_shard"], dtype=np.int64)
        self._setup_router()
        self.ntotal = int(sum(m.get("counts", [0])))

    def _init_from_index(self, index, n_shards, strategy):
        import tempfile
        ivf, _ = _ivf_parts(index)
        self.n_shards = faiss_ehi._check_int(n_shards, "n_shards", 1)
        self.leaf_to_shard = leaf_shard_map(index, self.n_shards, strategy)
        self.sources = []
        with tempfile.TemporaryDirectory() as tmp:
            m = shard(index, self.n_shards, tmp,
                      leaf_to_shard=self.leaf_to_shard)
            for f in m["shards"]:
                self.sources.append(
                    np.fromfile(os.path.join(tmp, f), dtype=np.uint8))
            self.router = faiss_ehi.read_index(os.path.join(tmp, m["router"]))
        self._setup_router()
        self.ntotal = int(index.ntotal)

    def _setup_router(self):
        self.ivf, self.transforms = _ivf_parts(self.router)
        self.quantizer = faiss_ehi.tree_quantizer(self.ivf)
        self.d = self.router.d
        self.nlist = self.ivf.nlist
        self.nprobe = self.ivf.nprobe
        self.metric_type = self.router.metric_type
        self.ties_by_label = bool(faiss_ehi._C.ties_by_label(self.ivf))
        if self.leaf_to_shard.shape != (self.nlist,):
            raise ValueError(f"leaf_to_shard has {self.leaf_to_shard.size} "
                             f"entries, the tree has {self.nlist} leaves")

    def _key(self, s):
        return f"{self._token}/{s}"

    def _live(self):
        """Addresses of the running workers, as the scheduler last told the
        client (refreshed every couple of seconds, which bounds how long
        a task restricted to a dead worker waits before it is moved)."""
        info = self.client.scheduler_info()
        return [a for a, w in info.get("workers", {}).items()
                if w.get("status", "running") in ("running", None)]

    def _load_on(self, s, worker):
        fut = self.client.submit(_load_shard, self._key(s), self.sources[s],
                                 workers=[worker], allow_other_workers=False,
                                 pure=False)
        return fut

    def _place(self):
        """Load every shard on `replicas` distinct workers, spreading the
        documents evenly over the workers."""
        live = sorted(self._live())
        if not live:
            raise RuntimeError("DistributedEHI: the Dask cluster has no "
                               "running worker")
        if self.replicas > len(live):
            raise ValueError(f"replicas = {self.replicas} needs as many "
                             f"workers, the cluster has {len(live)}")
        futs = []
        for s in range(self.n_shards):
            for r in range(self.replicas):
                w = live[(s * self.replicas + r) % len(live)]
                futs.append((s, w, self._load_on(s, w)))
        for s, w, f in futs:
            f.result()
            self.placement[s].append(w)

    def workers_of(self, s):
        """The workers holding shard s."""
        return list(self.placement[s])

    def _replace_lost(self, s, live):
        """Put shard s back on a live worker after all its replicas died;
        returns the worker or raises ShardLostError."""
        if not self.reload_lost or not live:
            why = "re-loading is off (reload_lost=False)" if live else \
                "no worker is running"
            raise ShardLostError(
                f"shard {s} ({self._describe(s)}): every replica is lost "
                f"and {why}")
        # The live worker holding the fewest shards takes it; if that one
        # dies too (the scheduler's list lags a death by a moment), the
        # next.
        held = {w: 0 for w in live}
        for ws in self.placement.values():
            for w in ws:
                if w in held:
                    held[w] += 1
        errors = []
        for w in sorted(live, key=lambda a: (held[a], a)):
            try:
                self._await(self._load_on(s, w), w)
                # Documents added since the shard was cut live only in the
                # workers' memory: replay them onto the new copy.
                for xt, ids, lists in self._added[s]:
                    self._await(self.client.submit(
                        _add_to_shard, self._key(s), xt, ids, lists,
                        workers=[w], allow_other_workers=False,
                        pure=False), w)
            except Exception as e:
                errors.append(f"{w}: {e}")
                continue
            self.placement[s].append(w)
            self.stats["reloads"] += 1
            return w
        raise ShardLostError(
            f"shard {s} ({self._describe(s)}): every replica is lost and "
            f"re-loading it failed ({'; '.join(errors)})")

    def _await(self, fut, worker):
        """fut's result; RuntimeError if `worker`, which must run it, is
        gone (Dask would otherwise wait for it forever)."""
        while True:
            try:
                return fut.result(timeout=self.poll)
            except TimeoutError:
                if worker not in self._live():
                    fut.cancel()
                    raise RuntimeError(f"worker {worker} is gone") from None

    def _describe(self, s):
        src = self.sources[s]
        return src if isinstance(src, str) else "in-memory shard"

    def _forget_dead(self, live):
        live = set(live)
        lost = 0
        for s, ws in self.placement.items():
            keep = [w for w in ws if w in live]
            lost += len(ws) - len(keep)
            self.placement[s] = keep
        return lost

    def close(self):
        """Drop the shards from the workers' caches."""
        for s, ws in self.placement.items():
            for w in ws:
                try:
                    self.client.submit(_drop_shard, self._key(s),
                                       workers=[w], pure=False).result(
                                           timeout=10)
                except Exception:
                    pass  # a dead worker holds nothing any more

    # ----------------------------------------------------------- routing
    def _transform(self, x):
        x = faiss_ehi._as_matrix(x, "x", self.d)
        for vt in self.transforms:
            x = np.ascontiguousarray(vt.apply(x), dtype=np.float32)
        return x

    def _beam(self, nprobe, params):
        qparams = None
        if params is not None:
            if not isinstance(params, faiss.SearchParametersIVF):
                raise TypeError("params must be a faiss.SearchParametersIVF, "
                                f"got {type(params).__name__}")
            if params.max_codes:
                raise ValueError("params.max_codes is not supported by "
                                 "DistributedEHI: the budget applies to all "
                                 "lists scanned in one place")
            if params.sel is not None:
                raise ValueError("params.sel (an IDSelector) is not "
                                 "supported by DistributedEHI")
            if nprobe is None:
                nprobe = params.nprobe
            qparams = params.quantizer_params
        nprobe = self.nprobe if nprobe is None else \
            faiss_ehi._check_int(nprobe, "nprobe", 1)
        return min(nprobe, self.nlist), qparams

    def route(self, x, nprobe=None, params=None):
        """(xt, Dq, Iq, shard_of): the transformed queries, the tree's
        probed leaves (n x beam, -1 padded) with their coarse distances,
        and the shard owning each probed leaf (-1 where none)."""
        xt = self._transform(x)
        nprobe, qparams = self._beam(nprobe, params)
        Dq, Iq = self.quantizer.search(xt, nprobe, params=qparams)
        shard_of = np.where(Iq >= 0, self.leaf_to_shard[np.maximum(Iq, 0)],
                            -1)
        return xt, Dq, Iq, shard_of

    def shards_touched(self, x, nprobe=None, params=None):
        """Number of shards each query is sent to at this beam."""
        _, _, _, shard_of = self.route(x, nprobe, params)
        touched = np.zeros((len(shard_of), self.n_shards), bool)
        rows = np.repeat(np.arange(len(shard_of)), shard_of.shape[1])
        ok = shard_of.ravel() >= 0
        touched[rows[ok], shard_of.ravel()[ok]] = True
        return touched.sum(1)

    # ----------------------------------------------------------- search
    def search(self, x, k, nprobe=None, params=None, allow_partial=False):
        """k nearest neighbours at beam `nprobe` (or params.nprobe, or the
        index's nprobe): (D, I), or (D, I, incomplete) with
        allow_partial=True."""
        k = faiss_ehi._check_int(k, "k", 1)
        xt, Dq, Iq, shard_of = self.route(x, nprobe, params)
        nq = len(xt)
        keep_max = self.metric_type == faiss.METRIC_INNER_PRODUCT
        touched = np.zeros((nq, self.n_shards), bool)
        for s in range(self.n_shards):
            touched[:, s] = (shard_of == s).any(axis=1)
        self.stats["touched"] = touched.sum(1)
        # One task per (query batch, shard): rows, leaves of that shard.
        tasks = {}
        for b0 in range(0, nq, self.batch_size):
            b1 = min(nq, b0 + self.batch_size)
            for s in range(self.n_shards):
                rows = b0 + np.nonzero(touched[b0:b1, s])[0]
                if len(rows):
                    tasks[(b0, s)] = rows
        results = self._run(tasks, xt, Dq, Iq, shard_of, k, allow_partial)
        incomplete = np.zeros(nq, bool)
        D = np.empty((nq, k), np.float32)
        I = np.empty((nq, k), np.int64)
        for b0 in range(0, nq, self.batch_size):
            b1 = min(nq, b0 + self.batch_size)
            parts = []
            for s in range(self.n_shards):
                key = (b0, s)
                if key not in tasks:
                    continue
                rows = tasks[key]
                res = results.get(key)
                if res is None:  # lost, allow_partial
                    incomplete[rows] = True
                    continue
                # Scatter the shard's rows into full-batch arrays.
                Ds, Is, Ps = res
                full = (np.full((b1 - b0, Ds.shape[1]),
                                -_FLT_MAX if keep_max else _FLT_MAX,
                                np.float32),
                        np.full((b1 - b0, Ds.shape[1]), -1, np.int64),
                        np.full((b1 - b0, Ds.shape[1]), -1, np.int64))
                full[0][rows - b0], full[1][rows - b0], full[2][rows - b0] = \
                    Ds, Is, Ps
                parts.append(full)
            D[b0:b1], I[b0:b1] = _merge(k, keep_max, parts, b1 - b0,
                                        self.ties_by_label)
        if allow_partial:
            return D, I, incomplete
        return D, I

    def _pick(self, s, busy):
        ws = self.placement[s]
        return min(ws, key=lambda w: (busy.get(w, 0), ws.index(w)))

    def _run(self, tasks, xt, Dq, Iq, shard_of, k, allow_partial):
        """Run the scan tasks to completion, moving a task whose worker died
        to another replica (or a re-loaded copy). Returns {task key:
        result}; with allow_partial, the tasks of lost shards are absent."""
        from distributed import wait
        busy, pending, results, lost = {}, {}, {}, set()

        def launch(keys):
            by_worker = {}
            for key in keys:
                s = key[1]
                if s in lost:
                    continue
                if not self.placement[s]:
                    try:
                        self._replace_lost(s, self._live())
                    except ShardLostError:
                        if not allow_partial:
                            raise
                        lost.add(s)
                        continue
                w = self._pick(s, busy)
                busy[w] = busy.get(w, 0) + 1
                by_worker.setdefault(w, []).append(key)
            # One client.map per worker: Dask's per-call overhead (several
            # ms) would otherwise dominate small batches.
            for w, keys in by_worker.items():
                args = []
                for key in keys:
                    rows, s = tasks[key], key[1]
                    args.append((self._key(s), xt[rows],
                                 np.where(shard_of[rows] == s, Iq[rows], -1),
                                 Dq[rows], k))
                futs = self.client.map(_scan_shard, *zip(*args),
                                       workers=[w], allow_other_workers=False,
                                       pure=False)
                for f, key in zip(futs, keys):
                    pending[f] = (key, w)

        launch(list(tasks))
        last_check = time.monotonic()
        while pending:
            try:
                done, _ = wait(list(pending), timeout=self.poll,
                               return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = []
            retry, ok = [], []
            live = set(self._live()) if done else set()
            for f in done:
                key, w = pending.pop(f)
                busy[w] -= 1
                if f.status == "finished" and w in live:
                    ok.append((f, key))
                    continue
                self.stats["retries"] += 1
                retry.append(key)
                if f.status == "error" and isinstance(f.exception(),
                                                      ShardNotLoadedError):
                    # The worker restarted and lost its cache.
                    self.placement[key[1]] = [
                        x for x in self.placement[key[1]] if x != w]
                elif f.status == "error" and w in live:
                    raise f.exception()
                # Otherwise its result died with the worker: run it again.
                f.cancel()
            if ok:
                try:
                    # A finished result still lives on its worker; if that
                    # worker dies now, Dask would re-run the task on it,
                    # i.e. never: give up after a while and run it again.
                    vals = self.client.sync(
                        self.client._gather, [f for f, _ in ok],
                        callback_timeout=self.gather_timeout)
                    for (_, key), v in zip(ok, vals):
                        results[key] = v
                except Exception:
                    for f, key in ok:
                        f.cancel()
                        self.stats["retries"] += 1
                        retry.append(key)
                self.stats["batches_done"] = len({key[0] for key in results})
            if time.monotonic() - last_check >= self.poll or retry:
                last_check = time.monotonic()
                live = self._live()
                self.stats["workers_lost"] += self._forget_dead(live)
                live = set(live)
                for f, (key, w) in list(pending.items()):
                    if w not in live:  # stuck: restricted to a dead worker
                        pending.pop(f)
                        f.cancel()
                        busy[w] -= 1
                        self.stats["retries"] += 1
                        retry.append(key)
            launch(retry)
        return results

    # -------------------------------------------------------------- add
    def add(self, x, ids=None):
        """Add vectors (ids: default ntotal, ntotal + 1, ...): the client
        routes them with the tree exactly as the index's add would and
        sends each to every replica of the shard owning its list."""
        x = faiss_ehi._as_matrix(x, "x", self.d)
        n = len(x)
        if ids is None:
            ids = np.arange(self.ntotal, self.ntotal + n, dtype=np.int64)
        ids = faiss_ehi._as_ids(ids, "ids", n)
        xt = self._transform(x)
        # The router is the index without lists: adding to it files each
        # vector exactly where the index would (d2l, assignment rule); the
        # lists it filled are read back and the router emptied again.
        self.ivf.add_with_ids(xt, np.arange(n, dtype=np.int64))
        il = self.ivf.invlists
        rows, lists = [], []
        for l in range(self.nlist):
            sz = il.list_size(l)
            if sz:
                rows.append(faiss.rev_swig_ptr(il.get_ids(l), sz).copy())
                lists.append(np.full(sz, l, dtype=np.int64))
        self.ivf.reset()
        if not rows:
            return
        rows, lists = np.concatenate(rows), np.concatenate(lists)
        owner = self.leaf_to_shard[lists]
        futs = []
        for s in range(self.n_shards):
            sel = owner == s
            if not sel.any():
                continue
            if not self.placement[s]:
                self._replace_lost(s, self._live())
            part = (xt[rows[sel]], ids[rows[sel]], lists[sel])
            # Kept to rebuild the shard should every replica die.
            self._added[s].append(part)
            for w in self.placement[s]:
                futs.append((s, w, self.client.submit(
                    _add_to_shard, self._key(s), *part, workers=[w],
                    allow_other_workers=False, pure=False)))
        for s, w, f in futs:
            try:
                f.result()
            except Exception as e:
                raise RuntimeError(
                    f"DistributedEHI.add: shard {s} on worker {w} failed: "
                    f"{e}") from e
        self.ntotal += n
