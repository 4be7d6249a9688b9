#!/usr/bin/env python3
"""Clustered, embedding-like float32 data for the kNN-graph benchmarks (Scripts/bench-graph.sh).

Shared mean direction + unit cluster centres with Zipf-like sizes + noise with a power-law spectrum in a random
rotation, L2-normalised (the recipe of research/perf.md). Deterministic for --seed; written in row chunks so a
10^6 x 384 set needs little more memory than its output.

    python Scripts/gen_clustered.py -n 200000 -d 128 -o data/clustered-200k-128.npy [--clusters 100] [--seed 0]
"""
import argparse
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, required=True)
    ap.add_argument("-d", type=int, required=True)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--labels", help="also write the cluster ids (int64 .npy) here")
    a = ap.parse_args()
    n, d, c = a.n, a.d, a.clusters
    rng = np.random.default_rng(a.seed)
    mean = rng.standard_normal(d); mean /= np.linalg.norm(mean)
    centres = rng.standard_normal((c, d)); centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = 1.0 / np.arange(1, c + 1) ** 0.8                       # Zipf-like cluster sizes
    labels = rng.choice(c, size=n, p=sizes / sizes.sum())
    spectrum = np.arange(1, d + 1, dtype=np.float64) ** -1.0        # power-law noise spectrum
    spectrum *= d / spectrum.sum()                                  # mean variance 1 per coordinate
    rot, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scale = np.sqrt(spectrum)[:, None] * rot.T                      # noise = z * sqrt(spectrum) @ rot^T
    out = np.lib.format.open_memmap(a.out + ".tmp.npy", mode="w+", dtype=np.float32, shape=(n, d))
    chunk = 65536
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        z = rng.standard_normal((e - s, d))
        x = 0.35 * mean + 0.52 * centres[labels[s:e]] + 0.0354 * (z @ scale)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x.astype(np.float32)
    out.flush(); del out
    os.replace(a.out + ".tmp.npy", a.out)
    if a.labels:
        np.save(a.labels, labels.astype(np.int64))
    x = np.load(a.out, mmap_mode="r")
    idx = rng.choice(n, size=min(n, 2000), replace=False)
    q = np.asarray(x[idx], dtype=np.float32)
    rand = float(np.mean(np.sum(q[: len(q) // 2] * q[len(q) // 2 : 2 * (len(q) // 2)], axis=1)))
    sims = q @ np.asarray(x[: min(n, 50000)], dtype=np.float32).T
    sims[sims > 0.99999] = -1
    top = -np.sort(-sims, axis=1)[:, :10]
    print(f"wrote {a.out}: {n} x {d}, {c} clusters; random-pair cosine {rand:.3f}, "
          f"1st/10th neighbour cosine (vs first 50k rows) {top[:, 0].mean():.3f}/{top[:, 9].mean():.3f}")


if __name__ == "__main__":
    main()
