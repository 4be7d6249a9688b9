#!/usr/bin/env python3
"""cleanlab's feature-based label-issue check, for `hdlabel bench noise`.

This is the path `cleanlab.datalab.Datalab(...).find_issues(features=X, issue_types={"label": {"k": k}})` takes
(cleanlab 2.9.0, datalab/internal/issue_manager/label.py, LabelIssueManager.find_issues) without the Hugging Face
`datasets` dependency that the Datalab container needs:

  1. out-of-sample pred_probs from a kNN classifier on the features:
       knn = KNeighborsClassifier(n_neighbors=k + 1).fit(X, labels); P = knn.predict_proba(X)
       P = (P - onehot(labels) / (k + 1)) * (k + 1) / k      # remove each point's own vote
  2. CleanLearning().find_label_issues(labels=labels, pred_probs=P)["is_label_issue"]
     (confident joint + filter_by="prune_by_noise_rate", cleanlab's default).

The kNN search (step 1) depends only on X, so it is done once per feature variant with NearestNeighbors and the
uniform-weight class vote of the k+1 neighbours is formed per label set; that is exactly what
KNeighborsClassifier.predict_proba computes (`--check` asserts it on the first label set).

Variants: `euclid` = the raw features (Datalab's default metric), `cosine` = rows L2-normalised first (the same
geometry as hdlabel's cosine graph).

Writes JSON {"cleanlab": version, "k": k, "results": {LABELS_PATH: {variant: {"flagged": [ids], "seconds": s}}},
"knn_seconds": {variant: s}}.
"""
import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import cleanlab  # noqa: E402
from cleanlab.classification import CleanLearning  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors  # noqa: E402


def knn_pred_probs(nbr, labels, num_classes, k):
    """Datalab's out-of-sample kNN pred_probs from precomputed (k+1)-neighbour indices (self included)."""
    votes = np.zeros((len(labels), num_classes))
    for col in range(nbr.shape[1]):
        np.add.at(votes, (np.arange(len(labels)), labels[nbr[:, col]]), 1.0)
    p = votes / (k + 1)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), labels] = 1.0
    return (p - onehot / (k + 1)) * (k + 1) / k


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--labels", required=True, nargs="+", help="noisy label .npy files (ints 0..C-1)")
    ap.add_argument("--k", type=int, default=10, help="Datalab label-issue k (default 10, Datalab's default)")
    ap.add_argument("--variants", default="euclid,cosine")
    ap.add_argument("--check", action="store_true", help="verify the kNN vote equals KNeighborsClassifier")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    x = np.load(a.embeddings).astype(np.float64)
    label_sets = {p: np.load(p).astype(np.int64) for p in a.labels}
    num_classes = int(max(l.max() for l in label_sets.values())) + 1
    out = {"cleanlab": cleanlab.__version__, "k": a.k, "results": {p: {} for p in a.labels}, "knn_seconds": {}}
    for variant in a.variants.split(","):
        feats = x if variant == "euclid" else x / np.linalg.norm(x, axis=1, keepdims=True)
        t0 = time.time()
        nn = NearestNeighbors(n_neighbors=a.k + 1).fit(feats)
        _, nbr = nn.kneighbors(feats)
        out["knn_seconds"][variant] = time.time() - t0
        for idx, (path, labels) in enumerate(label_sets.items()):
            t1 = time.time()
            probs = knn_pred_probs(nbr, labels, num_classes, a.k)
            if a.check and idx == 0:
                ref = KNeighborsClassifier(n_neighbors=a.k + 1).fit(feats, labels).predict_proba(feats)
                onehot = np.eye(num_classes)[labels]
                ref = (ref - onehot / (a.k + 1)) * (a.k + 1) / a.k
                diff = np.abs(ref - probs).max(axis=1)
                # Ties in distance may order neighbours differently; allow a handful of rows to differ.
                assert (diff > 1e-9).mean() < 1e-3, f"kNN vote differs from KNeighborsClassifier on {(diff > 1e-9).sum()} rows"
            issues = CleanLearning().find_label_issues(labels=labels, pred_probs=probs)
            flagged = np.flatnonzero(issues["is_label_issue"].to_numpy())
            out["results"][path][variant] = {
                "flagged": flagged.tolist(),
                "seconds": time.time() - t1 + out["knn_seconds"][variant],
            }
    with open(a.out, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
