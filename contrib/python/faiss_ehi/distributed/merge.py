# Copyright (c) faiss-ehi authors. MIT licence (see LICENSE).
"""The exact top-k merge of the shards' candidates."""

import numpy as np

from .common import _FLT_MAX


def _merge(k, keep_max, parts, nq, ties_by_label=False):
    """Top-k per query from the shards' candidates, exactly as one index
    scanning all the lists in probe order would return them.

    With `ties_by_label` (the index's SIMDListScanner, see
    faiss_ehi._C.ties_by_label) the single index keeps the k best
    (distance, id) pairs whatever the scan order, and so does the merge.
    Otherwise (Faiss's scanners):

    Faiss's heap admits an entry only if strictly better than its worst,
    and evicts the worst by (distance, id); the final list is sorted by
    (distance, id). When the k-th and (k+1)-th candidates differ the set
    is just the k best; otherwise (ties, or an id met twice with d2l > 1)
    the heap is replayed in scan order."""
    if not parts:
        D = np.full((nq, k), -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
        return D, np.full((nq, k), -1, dtype=np.int64)
    D = np.concatenate([p[0] for p in parts], axis=1)
    I = np.concatenate([p[1] for p in parts], axis=1)
    P = np.concatenate([p[2] for p in parts], axis=1)
    # Work in "smaller is better" terms: for inner product negate both the
    # distance and the id (Faiss's min-heap evicts the smallest (d, id)).
    sign = -1 if keep_max else 1
    Dk = np.where(I >= 0, sign * D.astype(np.float64), np.inf)
    Ik = sign * I
    # Among equal distances: the id order when the scanner breaks ties by
    # label, the scan order otherwise.
    order = np.lexsort((Ik if ties_by_label else P, Dk), axis=1)
    Ds = np.take_along_axis(Dk, order, 1)
    Is = np.take_along_axis(I, order, 1)
    C = Ds.shape[1]
    outD = np.full((nq, k), -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
    outI = np.full((nq, k), -1, dtype=np.int64)
    if C > k and not ties_by_label:
        slow = np.isfinite(Ds[:, k]) & (Ds[:, k - 1] == Ds[:, k])
    else:
        slow = np.zeros(nq, bool)
    srt = np.sort(np.where(Is >= 0, Is, -1 - np.arange(C)), axis=1)
    slow |= (srt[:, 1:] == srt[:, :-1]).any(axis=1)
    kk = min(k, C)
    top = order[:, :kk]
    tD = np.take_along_axis(Dk, top, 1)
    tI = np.take_along_axis(Ik, top, 1)
    # Final order (distance, id), as Faiss's heap_reorder leaves it.
    fin = np.lexsort((tI, tD), axis=1)
    top = np.take_along_axis(top, fin, 1)
    fD = np.take_along_axis(D, top, 1)
    fI = np.take_along_axis(I, top, 1)
    ok = fI >= 0
    outD[:, :kk] = np.where(ok, fD, outD[:, :kk])
    outI[:, :kk] = np.where(ok, fI, -1)
    for q in np.nonzero(slow)[0]:
        outD[q], outI[q] = _replay(k, sign, D[q], I[q], P[q], keep_max)
    return outD, outI


def _replay(k, sign, D, I, P, keep_max):
    """Faiss's heap, one query, entries in scan order (see _merge)."""
    heap, seen = [], set()
    for j in np.argsort(P, kind="stable"):
        if I[j] < 0:
            continue
        i = int(I[j])
        if i in seen:  # an id stored in several lists counts once
            continue
        seen.add(i)
        key = (sign * float(D[j]), sign * i)
        if len(heap) < k:
            heap.append((key, j))
        else:
            worst = max(range(len(heap)), key=lambda t: heap[t][0])
            if key[0] < heap[worst][0][0]:
                heap[worst] = (key, j)
    heap.sort()
    outD = np.full(k, -_FLT_MAX if keep_max else _FLT_MAX, np.float32)
    outI = np.full(k, -1, dtype=np.int64)
    for t, (_, j) in enumerate(heap):
        outD[t], outI[t] = D[j], I[j]
    return outD, outI
