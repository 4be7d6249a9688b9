#!/usr/bin/env python3
"""kNN-graph peers on the same .npy as `hdlabel bench graph` (run from the project venv: Scripts/venv.sh --graph).

Engines (each in its own process, so peak RSS is its own):
  pynndescent  pynndescent 0.7.0 NNDescent, n_neighbors=30 truncated to k (self dropped), metric euclidean on the
               L2-normalised rows (same ranking as cosine); a warm-up call on 2,000 rows first compiles numba, timed
               apart as "jit"; the build time excludes it.
  ivf          faiss IndexIVFFlat, inner product, nlist = 4*sqrt(n) trained on 40*nlist rows, nprobe 32.
  hnsw         faiss IndexHNSWFlat, inner product, M=32, efConstruction=100, efSearch=64.
faiss: time = train + add + searching every row for k+1 (self dropped); for n > --query-cap the search is timed
on --query-cap rows (the recall sample among them) and extrapolated linearly to n ("extrapolated" in the output).
Recall@min(k,10) on the same deterministic sample rows as hdlabel's GraphRecall (SplitMix64 partial Fisher-Yates,
seed 0x726563616c6c), exact neighbours by float32 matmul against all rows.

    .venv/bin/python Scripts/graph_peers.py EMB.npy --k 10 --engines pynndescent,ivf,hnsw --json out.json
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np

MASK = (1 << 64) - 1
RECALL_SEED = 0x72656361_6C6C


def splitmix_sample(n, count, seed):
    """Same rows as HDLabelCore KMeans.sample / GraphRecall.sampleRows."""
    if count >= n:
        return np.arange(n)
    state = seed & MASK
    moved, out = {}, []
    for i in range(count):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        j = i + z % (n - i)
        vj, vi = moved.get(j, j), moved.get(i, i)
        out.append(vj)
        moved[j] = vi
    return np.array(sorted(out))


def load(path):
    x = np.load(path).astype(np.float32, copy=False)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x)


def exact_rows(x, rows, k):
    """Exact top-k ids of `rows` (self excluded), float32 matmul in 100k-row database blocks."""
    q = x[rows]
    ids, sims = [], []
    for s in range(0, x.shape[0], 100_000):
        b = q @ x[s : s + 100_000].T
        own = (rows >= s) & (rows < s + b.shape[1])
        b[np.nonzero(own)[0], rows[own] - s] = -np.inf
        top = np.argpartition(-b, k, axis=1)[:, :k]
        ids.append(top + s)
        sims.append(np.take_along_axis(b, top, axis=1))
    ii, ss = np.concatenate(ids, axis=1), np.concatenate(sims, axis=1)
    order = np.argsort(-ss, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ii, order, axis=1)


def recall(found, truth, ke):
    per = np.array([len(set(f[:ke]) & set(t[:ke])) / ke for f, t in zip(found, truth)])
    m = per.mean()
    half = 1.96 * per.std(ddof=1) / math.sqrt(len(per)) if len(per) > 1 else 0.0
    return float(m), float(max(0.0, m - half)), float(min(1.0, m + half))


def drop_self(ids, rows, k):
    out = np.empty((len(rows), k), dtype=np.int64)
    for t, (r, row) in enumerate(zip(rows, ids)):
        row = [v for v in row if v != r and v >= 0]
        out[t] = row[:k] if len(row) >= k else row + [-1] * (k - len(row))
    return out


def run_one(engine, path, k, sample, query_cap):
    x = load(path)
    n, d = x.shape
    rows = splitmix_sample(n, sample, RECALL_SEED)
    ke = min(10, k)
    res = {"engine": engine, "n": n, "d": d, "k": k, "extrapolated": False}
    if engine == "pynndescent":
        import numba
        import pynndescent
        t0 = time.perf_counter()
        pynndescent.NNDescent(x[:2000], n_neighbors=30, metric="euclidean", random_state=0).neighbor_graph
        res["jit_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx = pynndescent.NNDescent(x, n_neighbors=30, metric="euclidean", random_state=0)
        ids, _ = idx.neighbor_graph
        res["seconds"] = time.perf_counter() - t0
        found = drop_self(ids[rows], rows, k)
        res["parameters"] = {"n_neighbors": 30, "metric": "euclidean (unit rows)", "numba": numba.__version__,
                             "threads": numba.get_num_threads(), "version": pynndescent.__version__ if hasattr(pynndescent, "__version__") else "0.7.0"}
    else:
        import faiss
        t0 = time.perf_counter()
        if engine == "ivf":
            nlist = int(4 * math.sqrt(n))
            quant = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quant, d, nlist, faiss.METRIC_INNER_PRODUCT)
            train = x[splitmix_sample(n, min(n, 40 * nlist), 1)]
            index.train(train)
            index.add(x)
            index.nprobe = 32
            res["parameters"] = {"nlist": nlist, "nprobe": 32, "train_rows": len(train)}
        else:
            index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 100
            index.add(x)
            index.hnsw.efSearch = 64
            res["parameters"] = {"M": 32, "efConstruction": 100, "efSearch": 64}
        build = time.perf_counter() - t0
        res["parameters"].update({"faiss": faiss.__version__, "omp_threads": faiss.omp_get_max_threads()})
        if n <= query_cap:
            t0 = time.perf_counter()
            _, ids = index.search(x, k + 1)
            search = time.perf_counter() - t0
            found = drop_self(ids[rows], rows, k)
        else:
            others = np.setdiff1d(splitmix_sample(n, query_cap, 2), rows)[: query_cap - len(rows)]
            q = np.concatenate([rows, others])
            t0 = time.perf_counter()
            _, ids = index.search(x[q], k + 1)
            search = (time.perf_counter() - t0) * n / len(q)
            res["extrapolated"] = True
            res["parameters"]["timed_query_rows"] = int(len(q))
            found = drop_self(ids[: len(rows)], rows, k)
        res["seconds"] = build + search
        res["build_seconds"], res["search_seconds"] = build, search
    truth = exact_rows(x, rows, ke)
    res["recall"], res["lower"], res["upper"] = recall(found, truth, ke)
    try:
        from threadpoolctl import threadpool_info
        res["blas"] = "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')} x{i.get('num_threads')}"
                                for i in threadpool_info())
    except Exception:  # threadpoolctl is optional here
        pass
    res["recall_rows"] = int(len(rows))
    res["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npy")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--engines", default="pynndescent,ivf,hnsw")
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--query-cap", type=int, default=50_000)
    ap.add_argument("--json", help="write the results (a list) here")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one, a.npy, a.k, a.sample, a.query_cap)))
        return
    results = []
    for e in a.engines.split(","):
        out = subprocess.run([sys.executable, __file__, a.npy, "--k", str(a.k), "--sample", str(a.sample),
                              "--query-cap", str(a.query_cap), "--one", e], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{e}: failed\n{out.stderr}", file=sys.stderr)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        extra = f", jit {r['jit_seconds']:.1f}s" if "jit_seconds" in r else ""
        print(f"{e}: {r['n']}x{r['d']} {r['seconds']:.2f}s{' (extrapolated search)' if r['extrapolated'] else ''}{extra}, "
              f"recall@10 {r['recall']:.4f} ({r['lower']:.4f}-{r['upper']:.4f}), peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
