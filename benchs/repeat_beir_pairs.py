#!/usr/bin/env python3
# Copyright (c) 2026 faiss-ehi authors. MIT licence (see LICENSE).
"""A larger BEIR-format collection for timing the trainer: the same corpus,
queries and test judgements, each training query's judgements repeated
COPIES times under new query ids (copies of the query), so that a
collection of a few thousand documents gets about a hundred thousand
training pairs.

    python3 benchs/repeat_beir_pairs.py SRC_DIR OUT_DIR [COPIES]

COPIES defaults to 120 (SciFact: 919 training pairs become 110,280). The
corpus is linked, not copied. Used for the "Training speed" figures of
benchs/RESULTS.md (ehi_train --data beir:OUT_DIR --out F).
"""
import json
import os
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    copies = int(sys.argv[3]) if len(sys.argv) == 4 else 120
    if copies < 1:
        sys.exit("COPIES must be at least 1")
    train_path = os.path.join(src, "qrels", "train.tsv")
    for path in (os.path.join(src, "corpus.jsonl"),
                 os.path.join(src, "queries.jsonl"), train_path,
                 os.path.join(src, "qrels", "test.tsv")):
        if not os.path.isfile(path):
            sys.exit("missing file: " + path)
    os.makedirs(os.path.join(out, "qrels"), exist_ok=True)
    corpus = os.path.join(out, "corpus.jsonl")
    if not os.path.lexists(corpus):
        os.symlink(os.path.abspath(os.path.join(src, "corpus.jsonl")), corpus)

    with open(train_path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    if rows and rows[0][0] == "query-id":
        rows = rows[1:]
    train_ids = {r[0] for r in rows}

    queries = {}
    with open(os.path.join(src, "queries.jsonl")) as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                queries[q["_id"]] = q
    with open(os.path.join(out, "queries.jsonl"), "w") as f:
        for qid, q in queries.items():
            # every query once under its own id (the test qrels name
            # them), training queries also as copies
            f.write(json.dumps(q) + "\n")
            if qid not in train_ids:
                continue
            for k in range(copies):
                f.write(json.dumps(dict(q, _id="%s#%d" % (qid, k))) + "\n")
    pairs = 0
    with open(os.path.join(out, "qrels", "train.tsv"), "w") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for k in range(copies):
            for r in rows:
                f.write("%s#%d\t%s\t%s\n" % (r[0], k, r[1], r[2]))
                pairs += 1
    with open(os.path.join(src, "qrels", "test.tsv")) as fi, \
            open(os.path.join(out, "qrels", "test.tsv"), "w") as fo:
        fo.write(fi.read())
    print("%s: %d training pairs (%d copies)" % (out, pairs, copies))


if __name__ == "__main__":
    main()
