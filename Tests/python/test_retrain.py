import gzip
import hashlib
import json
import os
import shutil
import struct

import numpy as np
import pytest

from conftest import ROOT, run_script

HDLABEL = os.environ.get("HDLABEL_BIN") or os.path.join(ROOT, ".build", "release", "hdlabel")


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def tiny_fashion(tmp_path_factory):
    """A Fashion-MNIST-shaped IDX set: 10 classes of 28x28 images, each class a bright bar at its own place."""
    d = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)

    def make(n):
        y = np.arange(n) % 10
        x = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(y):
            x[i, 2 + 2 * c:5 + 2 * c, 4:24] += 180
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.uint8)
    xtr, ytr = make(600)
    xte, yte = make(200)
    write_idx(d / "train-images-idx3-ubyte.gz", xtr)
    write_idx(d / "train-labels-idx1-ubyte.gz", ytr)
    write_idx(d / "t10k-images-idx3-ubyte.gz", xte)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", yte)
    return d


def needs_hdlabel():
    if not os.access(HDLABEL, os.X_OK):
        pytest.fail(f"hdlabel binary {HDLABEL} missing: Scripts/py-tests.sh builds it (or set HDLABEL_BIN)")


def test_idx_reader_and_split(tiny_fashion):
    import retrain
    xtr, ytr, xte, yte = retrain.load_fashion(str(tiny_fashion))
    assert xtr.shape == (600, 28, 28) and yte.shape == (200,)
    lab, unl = retrain.make_split(ytr, 4, 100.0, 0, seed=3)
    assert not set(lab) & set(unl)
    counts = np.bincount(ytr[lab], minlength=10)
    assert counts[0] == 4 and counts[-1] == 1  # long tail: head keeps the budget, tail at least one
    ucounts = np.bincount(ytr[unl], minlength=10)
    assert ucounts[0] > ucounts[-1] * 20


def test_top_coverage_accuracy_ranks_by_confidence_with_row_ties():
    import retrain
    conf = np.array([0.9, 0.5, 0.9, 0.7, 0.5, 0.1])
    labels = np.array([1, 2, 0, 3, 2, 5])
    truth = np.array([1, 0, 9, 3, 2, 5])  # right: rows 0, 3, 4, 5
    # ceil(0.5 * 6) = 3 rows: 0 and 2 (0.9, by row), then 3 (0.7)
    assert retrain.top_coverage_accuracy(conf, labels, truth, 0.5) == (2 / 3, 3)
    # 4 rows: the 0.5 tie between rows 1 (wrong) and 4 (right) goes to row 1
    assert retrain.top_coverage_accuracy(conf, labels, truth, 4 / 6) == (2 / 4, 4)
    # q = k/N exactly takes k rows; any more takes the next
    assert retrain.top_coverage_accuracy(conf, labels, truth, 1 / 6) == (1.0, 1)
    assert retrain.top_coverage_accuracy(conf, labels, truth, 1 / 6 + 0.01) == (0.5, 2)
    assert retrain.top_coverage_accuracy(conf, labels, truth, 1.0) == (4 / 6, 6)
    assert retrain.top_coverage_accuracy(conf, labels, truth, 0.0) == (None, 0)
    # an abstained row ranks after every labeled one whatever its confidence, and counts as wrong
    abst = labels.copy()
    abst[0] = -1
    assert retrain.top_coverage_accuracy(conf, abst, truth, 1 / 6) == (0.0, 1)  # row 2
    assert retrain.top_coverage_accuracy(conf, abst, truth, 1.0) == (3 / 6, 6)
    with pytest.raises(ValueError):
        retrain.top_coverage_accuracy(conf, labels, truth[:5], 0.5)


def test_selective_comparison_uses_the_pseudo_label_coverage():
    import retrain
    truth = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    soft = np.array([0.99, 0.97, 0.96, 0.5, 0.4, 0.3, 0.2, 0.2, 0.1, 0.1])  # 3 rows >= 0.95
    pseudo = np.array([0, 0, 2, 3, 4, 5, 6, 7, 8, 9])                      # 2 of those 3 right
    hconf = np.array([0.2, 0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    hl = truth.copy()
    hl[0] = 1
    s = retrain.selective_comparison(soft, pseudo, hconf, hl, truth, 0.95)
    eq = s["equal_coverage"]
    assert eq["coverage"] == 0.3 and eq["rows"] == 3
    assert eq["classifier_acc"] == 2 / 3 and eq["hdl_acc"] == 1.0  # HDL takes rows 1, 2, 3
    assert s["at"]["0.5"] == {"rows": 5, "classifier_acc": 4 / 5, "hdl_acc": 4 / 5}
    assert set(s["at"]) == {"0.4", "0.5", "0.7"}
    md = retrain.table([{"budget": 4, "balance": "balanced", "selective": s,
                         **{k: {"acc": 0.5, "f1": 0.5, "acc_covered": 0.5, "coverage": 0.5, "acc_all": 0.5}
                            for k in ("supervised", "fixmatch", "control", "hdl_1", "pseudo", "hdl")}}], 3)
    assert "| 4 | balanced | 66.7 / 30.0 | 100.0 | 33.3 (HDL ahead in 1/1) | 75.0 / 75.0 | 80.0 / 80.0 |" in md


def test_retrain_end_to_end(tmp_path, tiny_fashion):
    needs_hdlabel()
    out = tmp_path / "run"
    r = run_script("retrain.py", "run", "--data", tiny_fashion, "--budget", "4", "--balance", "balanced",
                   "--iters", "30", "--extra", "12", "--rounds", "2", "--pool", "0", "--hdlabel", HDLABEL,
                   "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((out / "result.json").read_text())
    base = hashlib.sha256((out / "base.pt").read_bytes()).hexdigest()
    # control and both HDL continuations start from the identical checkpoint
    assert res["base_sha256"] == base
    for name in ("control", "hdl_1", "hdl_r"):
        assert res[name]["start_sha256"] == base
        assert res[name]["iters"] == 12
        assert 0 <= res[name]["acc"] <= 1 and 0 <= res[name]["f1"] <= 1
    assert len(res["hdl_r"]["round_hdl_acc"]) == 2
    for k in ("supervised", "fixmatch", "linear_seeds", "linear_seeds_hdl"):
        assert 0 <= res[k]["acc"] <= 1
    assert res["hdl"]["coverage"] > 0 and res["labeled"] == 40
    eq = res["selective"]["equal_coverage"]
    assert eq["coverage"] == res["pseudo"]["coverage"]
    if eq["rows"]:  # the top-q rows by max softmax are exactly the thresholded ones
        assert eq["classifier_acc"] == pytest.approx(res["pseudo"]["acc_covered"])
    # the saved EMA weights work with embed.py's own-model path (the paper's setting: a layer of the SSL model)
    import retrain
    xtr, _, _, _ = retrain.load_fashion(str(tiny_fashion))
    np.save(tmp_path / "imgs.npy", xtr[:7])
    r = run_script("embed.py", tmp_path / "imgs.npy", "--encoder", "own", "--model-file",
                   os.path.join(ROOT, "Scripts", "fmnist_cnn.py"), "--model-class", "SmallCNN",
                   "--weights", out / "base.weights.pt", "--layer", "embed", "-o", tmp_path / "e.npy", "--quiet")
    assert r.returncode == 0, r.stderr
    import torch
    from fmnist_cnn import SmallCNN
    m = SmallCNN().eval()
    m.load_state_dict(torch.load(out / "base.weights.pt"))
    with torch.no_grad():
        ref = m.forward_features(torch.from_numpy(xtr[:7]).float().div(255).unsqueeze(1)).numpy()
    assert np.allclose(np.load(tmp_path / "e.npy"), ref, atol=1e-5)
    # the markdown table renders from a result
    md = retrain.table([res], 2)
    assert "+ HDL (2 rounds)" in md and "| 4 | balanced | 1 |" in md
    assert "HDL top-q at the same coverage: acc" in md


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
def test_relabel_under_mpi_matches_single_process(tmp_path):
    needs_hdlabel()
    import argparse
    import retrain
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8))
    emb = np.concatenate([c + 0.1 * rng.normal(size=(40, 8)) for c in centers]).astype(np.float32)
    seeds = np.full(120, -1)
    seeds[[0, 40, 80]] = [0, 1, 2]
    a = argparse.Namespace(hdlabel=HDLABEL, threads=1, hdl_args="", mpi=0)
    single, _ = retrain.run_hdlabel(emb, seeds, str(tmp_path), "single", a)
    a.mpi = 2
    multi, _ = retrain.run_hdlabel(emb, seeds, str(tmp_path), "mpi", a)
    assert np.array_equal(single, multi)
    assert np.mean(single == np.repeat([0, 1, 2], 40)) > 0.95
