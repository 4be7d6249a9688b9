#!/usr/bin/env python3
"""Peer labeling pipeline for Scripts/bench-label.sh: exact cosine kNN with faiss (IndexFlatIP on L2-normalised rows)
and 30 iterations of Zhou-style label spreading in scipy, F <- alpha S F + (1 - alpha) Y with
S = D^-1/2 W D^-1/2, W = A + A^T (A_ij = max(sim, 0)^3 for j among i's k nearest neighbours), Y one-hot seeds.

  label_peer.py gen EMB.npy SEEDS.npy TRUTH.npy N D CLASSES SEEDS_PER_CLASS [RNG_SEED]
      clustered synthetic data (unit class centres, Gaussian noise 0.6/sqrt(D) per coordinate, float32), the first
      SEEDS_PER_CLASS rows of every class as seeds (-1 elsewhere, int64), and the true class of every row.
  label_peer.py run EMB.npy SEEDS.npy [--truth TRUTH.npy] [--k 10] [--iterations 30] [--alpha 0.99] [--json OUT]
      runs the pipeline and prints/writes its phase times (seconds) and, with --truth, the accuracy on unlabeled rows.
Set OMP_WAIT_POLICY=PASSIVE when other OpenMP programs share the cores (faiss spins otherwise).
"""
import argparse
import json
import sys
import time

import numpy as np


def gen(a):
    n, d, c, per = int(a.n), int(a.d), int(a.classes), int(a.per_class)
    rng = np.random.default_rng(int(a.rng_seed))
    centres = rng.standard_normal((c, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    truth = rng.integers(0, c, size=n)
    x = np.empty((n, d), dtype=np.float32)
    step = 50_000
    for s in range(0, n, step):
        t = truth[s:s + step]
        x[s:s + step] = (centres[t] + (0.6 / np.sqrt(d)) * rng.standard_normal((len(t), d))).astype(np.float32)
    seeds = np.full(n, -1, dtype=np.int64)
    given = np.zeros(c, dtype=np.int64)
    for i in range(n):
        if given[truth[i]] < per:
            seeds[i] = truth[i]
            given[truth[i]] += 1
        if given.min() >= per:
            break
    np.save(a.emb, x)
    np.save(a.seeds, seeds)
    np.save(a.truth, truth.astype(np.int64))


def run(a):
    import faiss
    import scipy.sparse as sp

    t0 = time.perf_counter()
    x = np.load(a.emb).astype(np.float32, copy=False)
    seeds = np.load(a.seeds).astype(np.int64)
    t_read = time.perf_counter()
    x = np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12), dtype=np.float32)
    n, d = x.shape
    k = a.k
    t1 = time.perf_counter()
    index = faiss.IndexFlatIP(d)
    index.add(x)
    sims, ids = index.search(x, k + 1)
    t2 = time.perf_counter()
    # Drop self (normally the first hit; otherwise the last column).
    keep = np.ones_like(ids, dtype=bool)
    selfpos = ids == np.arange(n)[:, None]
    has_self = selfpos.any(axis=1)
    keep[has_self] = ~selfpos[has_self]
    keep[~has_self, -1] = False
    ids = ids[keep].reshape(n, k)
    sims = sims[keep].reshape(n, k)
    w = np.maximum(sims, 0).astype(np.float32) ** 3
    rows = np.repeat(np.arange(n), k)
    A = sp.csr_matrix((w.ravel(), (rows, ids.ravel())), shape=(n, n), dtype=np.float32)
    W = (A + A.T).tocsr()
    deg = np.asarray(W.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1e-30)), 0).astype(np.float32)
    S = (sp.diags(inv) @ W @ sp.diags(inv)).astype(np.float32).tocsr()
    c = int(seeds.max()) + 1
    Y = np.zeros((n, c), dtype=np.float32)
    lab = seeds >= 0
    Y[np.where(lab)[0], seeds[lab]] = 1
    F = Y.copy()
    alpha = np.float32(a.alpha)
    for _ in range(a.iterations):
        F = alpha * (S @ F) + (1 - alpha) * Y
    pred = F.argmax(axis=1)
    pred[lab] = seeds[lab]
    t3 = time.perf_counter()
    out = {"read": t_read - t0, "normalise": t1 - t_read, "graph": t2 - t1, "propagation": t3 - t2,
           "total": t3 - t_read, "n": n, "d": d, "k": k, "classes": c, "iterations": a.iterations,
           "faiss": faiss.__version__, "omp_threads": faiss.omp_get_max_threads()}
    if a.truth:
        truth = np.load(a.truth)
        un = ~lab
        out["accuracy"] = float((pred[un] == truth[un]).mean())
    text = json.dumps(out)
    print(text)
    if a.json:
        open(a.json, "w").write(text + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    for name in ("emb", "seeds", "truth", "n", "d", "classes", "per_class"):
        g.add_argument(name)
    g.add_argument("rng_seed", nargs="?", default="42")
    r = sub.add_parser("run")
    r.add_argument("emb")
    r.add_argument("seeds")
    r.add_argument("--truth")
    r.add_argument("--k", type=int, default=10)
    r.add_argument("--iterations", type=int, default=30)
    r.add_argument("--alpha", type=float, default=0.99)
    r.add_argument("--json")
    a = p.parse_args()
    gen(a) if a.cmd == "gen" else run(a)


if __name__ == "__main__":
    sys.exit(main())
