#!/usr/bin/env python3
"""scikit-learn baselines for `hdlabel bench quality`.

Reads embeddings (.npy, n x d float), seeds (.npy, n ints, -1 = unlabeled) and optionally the ground truth
(.npy, n ints), runs

  * spreading-sk : LabelSpreading(kernel="knn", n_neighbors=10)
  * logreg       : LogisticRegression fitted on the seed rows only (few-shot)
  * selftrain    : SelfTrainingClassifier(LogisticRegression, threshold=0.9) (confidence-threshold pseudo-labels)

The two logistic-regression methods see the rows standardised per feature (StandardScaler fitted on all rows,
no labels involved): on unit-norm rows a C=1 model is so soft that no prediction reaches the 0.9 threshold and
self-training adds nothing (it then equals logreg). The JSON reports how many rows self-training pseudo-labeled.

and writes JSON: {"methods": {name: {"labels": [...], "seconds": s, "metrics": {...}}}, ...}.
Seed rows always keep their seed label. Metrics (if --truth is given) are on the unlabeled rows only.
Rows are L2-normalised first unless --no-normalize (the Swift methods use cosine similarity too).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier  # noqa: E402

METHODS = ("spreading-sk", "logreg", "selftrain")


def make_logreg(seed):
    return LogisticRegression(C=1.0, max_iter=1000, random_state=seed)


def run_method(name, x, seeds, seed, info):
    labeled = seeds >= 0
    if name == "spreading-sk":
        m = LabelSpreading(kernel="knn", n_neighbors=10, max_iter=100)
        m.fit(x, seeds)
        return m.transduction_.astype(np.int64)
    if name == "logreg":
        xs = StandardScaler().fit_transform(x)
        m = make_logreg(seed)
        m.fit(xs[labeled], seeds[labeled])
        return m.predict(xs).astype(np.int64)
    if name == "selftrain":
        xs = StandardScaler().fit_transform(x)
        m = SelfTrainingClassifier(make_logreg(seed), threshold=0.9, max_iter=10)
        m.fit(xs, seeds)
        info["pseudo_labeled"] = int((m.labeled_iter_ > 0).sum())
        info["termination"] = str(m.termination_condition_)
        return m.predict(xs).astype(np.int64)
    raise ValueError(f"unknown method {name!r} (known: {', '.join(METHODS)})")


def metrics(pred, truth, seeds):
    ev = seeds < 0
    t, p = truth[ev], pred[ev]
    return {
        "evaluated": int(ev.sum()),
        "accuracy": float(accuracy_score(t, p)),
        "macro_f1": float(f1_score(t, p, average="macro", zero_division=0)),
    }


def load(path, what):
    if not os.path.exists(path):
        sys.exit(f"baselines.py: {what} file '{path}' does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - report any parse error with the file name
        sys.exit(f"baselines.py: cannot read {what} '{path}': {e}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--truth")
    ap.add_argument("--out", required=True, help="JSON output path (written atomically)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-normalize", action="store_true")
    ap.add_argument("--no-labels", action="store_true", help="omit per-row labels from the JSON (metrics only)")
    a = ap.parse_args()

    x = load(a.embeddings, "embeddings").astype(np.float64)
    seeds = load(a.seeds, "seeds").astype(np.int64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != seeds.shape[0]:
        sys.exit(f"baselines.py: embeddings shape {x.shape} does not match {seeds.shape[0]} seeds")
    truth = load(a.truth, "truth").astype(np.int64).reshape(-1) if a.truth else None
    if truth is not None and truth.shape != seeds.shape:
        sys.exit(f"baselines.py: truth has {truth.shape[0]} rows, seeds {seeds.shape[0]}")
    if not a.no_normalize:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, 1e-12)

    import warnings

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    out = {"n": int(x.shape[0]), "d": int(x.shape[1]), "labeled": int((seeds >= 0).sum()), "methods": {}}
    for name in [m for m in a.methods.split(",") if m]:
        t0 = time.perf_counter()
        entry = {}
        pred = run_method(name, x, seeds, a.seed, entry)
        pred[seeds >= 0] = seeds[seeds >= 0]
        entry["seconds"] = time.perf_counter() - t0
        if not a.no_labels:
            entry["labels"] = pred.tolist()
        if truth is not None:
            entry["metrics"] = metrics(pred, truth, seeds)
        out["methods"][name] = entry
    tmp = a.out + f".tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
