#!/usr/bin/env python3
"""FixMatch on Fashion-MNIST, then relabel with hdlabel and retrain: does HDL beat an equal-budget control?

  retrain.py run   --budget 4 --balance rho100 --seed 0 --out runs/retrain-one      # one split
  retrain.py bench --budgets 4,10 --balances balanced,rho100 --seeds 0,1,2 --jobs 2 \\
                   --out runs/retrain --md benchmarks/results/retrain.md             # the results table

One run (one split: `--budget` labels per class, class c has weight rho^(-c/9), labeled count round(budget*w)
at least 1, unlabeled count floor(n_max*w), as `hdlabel bench quality` splits; --pool caps the unlabeled part):
  1. supervised : the CNN (Scripts/fmnist_cnn.py) on the seeds only, --iters iterations (weak augmentation).
  2. fixmatch   : FixMatch from scratch for --iters iterations (weak = flip + translate, strong = weak +
                  RandAugment-lite + cutout, confidence threshold --threshold, EMA of the weights); the checkpoint
                  base.pt is saved and hashed (sha256).
  3. hdlabel    : penultimate-layer (`embed`) embeddings of the EMA model for the labeled + unlabeled pool ->
                  `hdlabel label` (or `mpirun -np P hdlabel cluster` with --mpi P) -> labels for the pool.
                  Scored on the unlabeled part against the model's own pseudo-labels (confidence >= threshold),
                  also at equal coverage: with q the pseudo-labels' coverage, HDL's ceil(q*N) most confident
                  labels (hdlabel's calibrated confidence, ties by row); and both rankings (max softmax, HDL
                  confidence) at 40 / 50 / 70 % coverage ("selective" in the result).
  4. linear     : a linear head on the frozen embeddings, trained on the seeds only vs seeds + HDL labels.
  5. control    : base.pt continued with FixMatch for --extra iterations (equal budget, no HDL).
  6. hdl        : base.pt continued for --extra iterations with HDL labels replacing the thresholded
                  pseudo-labels (--hdl-mode alongside: both terms), 1 round.
  7. hdl-R      : the same --extra iterations split into --rounds R rounds, relabeling before each round with
                  the current model's embeddings.
Every model is evaluated on Fashion-MNIST's real test split (10,000 images): accuracy and macro-F1 (EMA weights).
Control, hdl and hdl-R load the same base.pt; its hash is recorded in each result ("start_sha256").

Data: Debian dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/*.gz, IDX); --data DIR overrides.
Runs on CPU; seeded (torch, numpy). Needs `Scripts/venv.sh --edges` and `swift build -c release`.
"""
import argparse
import concurrent.futures as cf
import gzip
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from filehash import file_sha256  # noqa: E402
NUM_CLASSES = 10


_T0 = time.time()


def log(msg, quiet=False):
    if not quiet:
        print(f"retrain.py: [{time.time() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------- data
def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion(data_dir):
    def find(stem):
        for p in (f"{stem}.gz", stem):
            if os.path.exists(os.path.join(data_dir, p)):
                return os.path.join(data_dir, p)
        sys.exit(f"retrain.py: error: {stem}(.gz) not found in {data_dir}; install the Debian package "
                 "dataset-fashion-mnist or pass --data DIR")
    return (read_idx(find("train-images-idx3-ubyte")), read_idx(find("train-labels-idx1-ubyte")).astype(np.int64),
            read_idx(find("t10k-images-idx3-ubyte")), read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64))


def make_split(y, budget, rho, pool, seed):
    """Labeled and unlabeled train indices (disjoint): the bench's long-tail profile with class 0 as the head."""
    rng = np.random.default_rng(seed)
    w = np.array([rho ** (-c / (NUM_CLASSES - 1)) for c in range(NUM_CLASSES)]) if rho > 1 else np.ones(NUM_CLASSES)
    nl = np.maximum(1, np.round(budget * w)).astype(int)
    per_class = [rng.permutation(np.flatnonzero(y == c)) for c in range(NUM_CLASSES)]
    n_max = min((len(per_class[c]) - nl[c]) / w[c] for c in range(NUM_CLASSES))
    if pool > 0:
        n_max = min(n_max, pool / w.sum())
    nu = np.floor(n_max * w).astype(int)
    lab = np.concatenate([per_class[c][:nl[c]] for c in range(NUM_CLASSES)])
    unl = np.concatenate([per_class[c][nl[c]:nl[c] + nu[c]] for c in range(NUM_CLASSES)])
    return np.sort(lab), np.sort(unl)


# ----------------------------------------------------------------------------------------------------------- augmentation
def _affine(x, theta):
    import torch.nn.functional as F
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _base_theta(b, gen, translate=0.125, device="cpu"):
    import torch
    theta = torch.zeros(b, 2, 3, device=device)
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta[:, 0, 0] = flip
    theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(b, 2, generator=gen) * 2 - 1) * 2 * translate  # grid units: 2 = full width
    return theta


def weak_aug(x, gen):
    """Horizontal flip (p=0.5) + translation up to 12.5% of the side."""
    return _affine(x, _base_theta(x.shape[0], gen))


def strong_aug(x, gen, ops_per_image=2, cutout=12):
    """Weak + RandAugment-lite (2 random ops a image, random magnitude) + one cutout square (value 0.5)."""
    import torch
    b = x.shape[0]
    theta = _base_theta(b, gen)
    n_ops = 10
    pick = torch.rand(b, n_ops, generator=gen).argsort(dim=1)[:, :ops_per_image]
    chosen = torch.zeros(b, n_ops, dtype=torch.bool).scatter_(1, pick, True)
    mag = torch.rand(b, n_ops, generator=gen)
    # geometric ops folded into the affine map: 0 rotate, 1 shear-x, 2 shear-y, 3 translate-x, 4 translate-y
    ang = (mag[:, 0] * 2 - 1) * math.radians(30) * chosen[:, 0]
    rot = torch.zeros(b, 2, 2)
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = ang.cos(), -ang.sin(), ang.sin(), ang.cos()
    shear = torch.eye(2).repeat(b, 1, 1)
    shear[:, 0, 1] = (mag[:, 1] * 2 - 1) * 0.3 * chosen[:, 1]
    shear[:, 1, 0] = (mag[:, 2] * 2 - 1) * 0.3 * chosen[:, 2]
    theta[:, :, :2] = theta[:, :, :2] @ rot @ shear
    theta[:, 0, 2] += (mag[:, 3] * 2 - 1) * 0.6 * chosen[:, 3]
    theta[:, 1, 2] += (mag[:, 4] * 2 - 1) * 0.6 * chosen[:, 4]
    x = _affine(x, theta)
    v = lambda i: mag[:, i].view(b, 1, 1, 1)  # noqa: E731
    c = lambda i: chosen[:, i].view(b, 1, 1, 1)  # noqa: E731
    # photometric: 5 brightness, 6 contrast, 7 solarize, 8 posterize, 9 autocontrast
    x = torch.where(c(5), x * (0.05 + 1.9 * v(5)), x)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = torch.where(c(6), mean + (x - mean) * (0.05 + 1.9 * v(6)), x)
    x = x.clamp(0, 1)
    x = torch.where(c(7) & (x >= v(7)), 1 - x, x)
    levels = (2 ** (4 + (v(8) * 4).floor())).clamp(max=256)
    x = torch.where(c(8), (x * (levels - 1)).round() / (levels - 1), x)
    lo, hi = x.amin(dim=(1, 2, 3), keepdim=True), x.amax(dim=(1, 2, 3), keepdim=True)
    x = torch.where(c(9), (x - lo) / (hi - lo).clamp(min=1e-3), x)
    # cutout
    h, w = x.shape[-2:]
    cy = torch.randint(0, h, (b,), generator=gen).view(b, 1, 1, 1)
    cx = torch.randint(0, w, (b,), generator=gen).view(b, 1, 1, 1)
    yy = torch.arange(h).view(1, 1, h, 1)
    xx = torch.arange(w).view(1, 1, 1, w)
    box = ((yy - cy).abs() <= cutout // 2) & ((xx - cx).abs() <= cutout // 2)
    return torch.where(box, torch.full_like(x, 0.5), x).clamp(0, 1)


# ----------------------------------------------------------------------------------------------------------- training
class Trainer:
    """Model + EMA + SGD with FixMatch's cosine schedule over `total_iters`; saves/loads complete checkpoints."""

    def __init__(self, total_iters, seed, lr=0.03, wd=5e-4, ema=0.99):
        import torch
        from fmnist_cnn import SmallCNN
        torch.manual_seed(seed)
        self.model = SmallCNN()
        self.ema = SmallCNN()
        self.ema.load_state_dict(self.model.state_dict())
        for p in self.ema.parameters():
            p.requires_grad_(False)
        decay, no_decay = [], []
        for n, p in self.model.named_parameters():
            (no_decay if ("bn" in n or p.ndim == 1) else decay).append(p)
        self.opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                                   lr=lr, momentum=0.9, nesterov=True)
        self.lr0, self.total, self.step, self.ema_decay = lr, max(1, total_iters), 0, ema

    def lr_now(self):
        return self.lr0 * math.cos(7 * math.pi * self.step / (16 * self.total))

    def update(self, loss):
        import torch
        for g in self.opt.param_groups:
            g["lr"] = self.lr_now()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        with torch.no_grad():
            for pe, pm in zip(self.ema.parameters(), self.model.parameters()):
                pe.mul_(self.ema_decay).add_(pm.detach(), alpha=1 - self.ema_decay)
            for be, bm in zip(self.ema.buffers(), self.model.buffers()):
                be.copy_(bm)

    def save(self, path):
        import torch
        tmp = path + ".tmp"
        torch.save({"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                    "step": self.step, "total": self.total}, tmp)
        os.replace(tmp, path)
        return file_sha256(path)

    def load(self, path):
        import torch
        ck = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(ck["model"])
        self.ema.load_state_dict(ck["ema"])
        self.opt.load_state_dict(ck["opt"])
        self.step = ck["step"]
        return file_sha256(path)


def to_tensor(images):
    import torch
    return torch.from_numpy(np.array(images, dtype=np.float32)).div_(255.0).unsqueeze(1)


def train(tr, xl, yl, xu, iters, args, gen, mode, hdl=None):
    """`iters` steps. mode: 'supervised' (labeled only), 'fixmatch', 'hdl' (HDL targets replace the thresholded
    pseudo-labels), 'alongside' (FixMatch term + HDL term). xl/xu: uint8 images; yl: labels; hdl: (labels, mask)
    for xu rows. Returns the mean mask rate of the unlabeled term."""
    import torch
    import torch.nn.functional as F
    tr.model.train()
    nl, nu = len(xl), len(xu)
    yl_t = torch.from_numpy(yl)
    rates = []
    for _ in range(iters):
        li = torch.randint(0, nl, (args.batch,), generator=gen)
        x_l = weak_aug(to_tensor(xl[li.numpy()]), gen)
        if mode == "supervised":
            loss = F.cross_entropy(tr.model(x_l), yl_t[li])
            tr.update(loss)
            continue
        ui = torch.randint(0, nu, (args.batch * args.mu,), generator=gen)
        xu_b = to_tensor(xu[ui.numpy()])
        x_w, x_s = weak_aug(xu_b, gen), strong_aug(xu_b, gen)
        logits = tr.model(torch.cat([x_l, x_w, x_s]))
        lo_l = logits[:args.batch]
        lo_w, lo_s = logits[args.batch:].chunk(2)
        loss = F.cross_entropy(lo_l, yl_t[li])
        if mode in ("fixmatch", "alongside"):
            prob = lo_w.detach().softmax(dim=1)
            conf, pseudo = prob.max(dim=1)
            mask = (conf >= args.threshold).float()
            loss = loss + args.lambda_u * (F.cross_entropy(lo_s, pseudo, reduction="none") * mask).mean()
            rates.append(mask.mean().item())
        if mode in ("hdl", "alongside"):
            hl, hm = hdl
            t, m = hl[ui], hm[ui]
            loss = loss + args.lambda_u * (F.cross_entropy(lo_s, t.clamp(min=0), reduction="none") * m).mean()
            rates.append(m.mean().item())
        tr.update(loss)
    return float(np.mean(rates)) if rates else None


def predict(model, images, batch=256):
    """(probabilities, embeddings) of the model in eval mode."""
    import torch
    model.eval()
    probs, embs = [], []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            e = model.forward_features(to_tensor(images[i:i + batch]))
            probs.append(model.fc(e).softmax(dim=1).numpy())
            embs.append(e.numpy())
    return np.concatenate(probs), np.concatenate(embs).astype(np.float32)


def macro_f1(y, p, k=NUM_CLASSES):
    f1 = []
    for c in range(k):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1))


def scores(y, p):
    return {"acc": float(np.mean(p == y)), "f1": macro_f1(y, p)}


SELECTIVE_COVERAGES = (0.4, 0.5, 0.7)


def top_coverage_accuracy(confidence, labels, truth, coverage):
    """Selective accuracy at `coverage`: the accuracy of the ceil(coverage * N) most confident of N rows.

    Rows are ranked by confidence descending, ties by row index ascending (a stable sort, so the result is
    deterministic); abstained rows (label < 0) rank after every labeled row and count as wrong if taken.
    Returns (accuracy, rows taken); (None, 0) when no row is taken."""
    confidence = np.asarray(confidence, dtype=np.float64)
    labels, truth = np.asarray(labels), np.asarray(truth)
    n_all = len(confidence)
    if not (len(labels) == len(truth) == n_all):
        raise ValueError("confidence, labels and truth must have the same length")
    if not 0.0 <= coverage <= 1.0:
        raise ValueError(f"coverage must be in [0, 1], got {coverage}")
    n = min(n_all, math.ceil(coverage * n_all - 1e-9))  # q = k/N exactly must give k, not k + 1
    if n <= 0:
        return None, 0
    key = np.where(labels >= 0, -confidence, np.inf)
    order = np.argsort(key, kind="stable")[:n]
    return float(np.mean(labels[order] == truth[order])), int(n)


def selective_comparison(pseudo_conf, pseudo, hdl_conf, hdl_labels, truth, threshold, coverages=SELECTIVE_COVERAGES):
    """The classifier's thresholded pseudo-labels vs HDL's most confident labels at equal coverage, and both
    rankings (max softmax / HDL confidence) at fixed coverages. All arrays: the unlabeled rows."""
    q = float(np.mean(pseudo_conf >= threshold))
    cls_acc, n = top_coverage_accuracy(pseudo_conf, pseudo, truth, q)
    hdl_acc, _ = top_coverage_accuracy(hdl_conf, hdl_labels, truth, q)
    out = {"equal_coverage": {"coverage": q, "rows": n, "classifier_acc": cls_acc, "hdl_acc": hdl_acc},
           "at": {}}
    for c in coverages:
        a, m = top_coverage_accuracy(pseudo_conf, pseudo, truth, c)
        b, _ = top_coverage_accuracy(hdl_conf, hdl_labels, truth, c)
        out["at"][f"{c:g}"] = {"rows": m, "classifier_acc": a, "hdl_acc": b}
    return out


def evaluate(tr, xte, yte):
    prob, _ = predict(tr.ema, xte)
    return scores(yte, prob.argmax(1))


# ----------------------------------------------------------------------------------------------------------- hdlabel
def run_hdlabel(emb, seeds, workdir, tag, args):
    """Writes emb/seeds .npy, runs hdlabel, returns (labels int64 with -1 = abstained, confidence float)."""
    ep, sp, op = (os.path.join(workdir, f"{tag}.{s}") for s in ("emb.npy", "seeds.npy", "labels.csv"))
    np.save(ep, emb.astype(np.float32))
    np.save(sp, seeds.astype(np.int64))
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", str(max(1, args.threads)))
    extra = args.hdl_args.split() if args.hdl_args else []
    if args.mpi:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1")
        cmd = ["mpirun", "--oversubscribe", "-np", str(args.mpi), args.hdlabel, "cluster", ep, sp, "-o", op,
               "--blas-threads", "1"] + extra
    else:
        cmd = [args.hdlabel, "label", ep, sp, "-o", op, "--quiet"] + extra
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    labels = np.full(len(seeds), -1, dtype=np.int64)
    conf = np.zeros(len(seeds), dtype=np.float32)
    with open(op) as f:
        next(f)
        for line in f:
            i, lab, c, *_ = line.rstrip("\n").split(",")
            if lab != "":
                labels[int(i)] = int(lab)
            conf[int(i)] = float(c)
    return labels, conf


def linear_head(e_train, y_train, e_test, y_test, seed, steps=300):
    """Softmax regression on standardised frozen embeddings (full batch, Adam)."""
    import torch
    import torch.nn.functional as F
    torch.manual_seed(seed)
    mu, sd = e_train.mean(0), e_train.std(0) + 1e-6
    a = torch.from_numpy((e_train - mu) / sd)
    b = torch.from_numpy((e_test - mu) / sd)
    y = torch.from_numpy(y_train)
    head = torch.nn.Linear(a.shape[1], NUM_CLASSES)
    opt = torch.optim.Adam(head.parameters(), lr=0.01, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(head(a), y).backward()
        opt.step()
    with torch.no_grad():
        return scores(y_test, head(b).argmax(1).numpy())


# ----------------------------------------------------------------------------------------------------------- one run
def run_one(args, data=None):
    import torch
    torch.set_num_threads(max(1, args.threads))
    t0 = time.time()
    q = args.quiet
    os.makedirs(args.out, exist_ok=True)
    xtr, ytr, xte, yte = data if data is not None else load_fashion(args.data)
    if args.test_n:
        xte, yte = xte[:args.test_n], yte[:args.test_n]
    rho = {"balanced": 1.0}.get(args.balance) or float(args.balance.replace("rho", ""))
    lab, unl = make_split(ytr, args.budget, rho, args.pool, args.seed)
    xl, yl, xu, yu = xtr[lab], ytr[lab], xtr[unl], ytr[unl]
    xpool = np.concatenate([xl, xu])
    seeds = np.concatenate([yl, np.full(len(xu), -1)])
    res = {"budget": args.budget, "balance": args.balance, "seed": args.seed, "labeled": int(len(lab)),
           "unlabeled": int(len(unl)), "iters": args.iters, "extra": args.extra, "rounds": args.rounds,
           "hdl_mode": args.hdl_mode, "test_n": int(len(yte)), "mpi": args.mpi}
    log(f"[{args.budget}/class {args.balance} seed {args.seed}] {len(lab)} labeled, {len(unl)} unlabeled", q)

    # 1. supervised on seeds
    gen = torch.Generator().manual_seed(args.seed)
    sup = Trainer(args.iters, args.seed, ema=args.ema)
    train(sup, xl, yl, xu, args.iters, args, gen, "supervised")
    res["supervised"] = evaluate(sup, xte, yte)
    log(f"  supervised {res['supervised']}", q)

    # 2. FixMatch base; every continuation starts from the saved checkpoint
    total = args.iters + args.extra
    gen = torch.Generator().manual_seed(args.seed + 1)
    base = Trainer(total, args.seed, ema=args.ema)
    res["fixmatch_mask_rate"] = train(base, xl, yl, xu, args.iters, args, gen, "fixmatch")
    ckpt = os.path.join(args.out, "base.pt")
    res["base_sha256"] = base.save(ckpt)
    torch.save(base.ema.state_dict(), os.path.join(args.out, "base.weights.pt"))  # for embed.py --encoder own
    res["fixmatch"] = evaluate(base, xte, yte)
    log(f"  fixmatch {res['fixmatch']}", q)

    # 3. HDL labels from the base model's embeddings vs the model's own pseudo-labels
    prob, emb = predict(base.ema, xpool)
    _, emb_te = predict(base.ema, xte)
    conf, pseudo = prob.max(1), prob.argmax(1)
    u = slice(len(xl), None)
    cov = conf[u] >= args.threshold
    res["pseudo"] = {"acc_covered": float(np.mean(pseudo[u][cov] == yu[cov])) if cov.any() else None,
                     "coverage": float(cov.mean()), "acc_all": float(np.mean(pseudo[u] == yu))}
    th = time.time()
    hl, hc = run_hdlabel(emb, seeds, args.out, "round0", args)
    res["hdlabel_seconds"] = round(time.time() - th, 2)
    hcov = hl[u] >= 0
    res["hdl"] = {"acc_covered": float(np.mean(hl[u][hcov] == yu[hcov])) if hcov.any() else None,
                  "coverage": float(hcov.mean()), "acc_all": float(np.mean(hl[u] == yu))}
    res["selective"] = selective_comparison(conf[u], pseudo[u], hc[u], hl[u], yu, args.threshold)
    log(f"  pseudo-labels {res['pseudo']}  hdl {res['hdl']}  equal coverage {res['selective']['equal_coverage']}", q)

    # 4. linear head on frozen embeddings
    res["linear_seeds"] = linear_head(emb[:len(xl)], yl, emb_te, yte, args.seed)
    keep = hl >= 0
    res["linear_seeds_hdl"] = linear_head(emb[keep], hl[keep], emb_te, yte, args.seed)

    def hdl_targets(labels, confidence):
        m = (labels[u] >= 0) & (confidence[u] >= args.hdl_min_confidence)
        return torch.from_numpy(labels[u].copy()), torch.from_numpy(m.astype(np.float32))

    # 5. control, 6. HDL 1 round, 7. HDL R rounds: same checkpoint, same sampling seed, same iterations
    runs = [("control", 1), ("hdl_1", 1)] + ([("hdl_r", args.rounds)] if args.rounds > 1 else [])
    for name, rounds in runs:
        tr = Trainer(total, args.seed, ema=args.ema)
        start = tr.load(ckpt)
        gen = torch.Generator().manual_seed(args.seed + 2)
        out = {"start_sha256": start, "iters": 0, "rounds": rounds}
        if name == "control":
            out["mask_rate"] = train(tr, xl, yl, xu, args.extra, args, gen, "fixmatch")
            out["iters"] = args.extra
        else:
            labels, confidence = hl, hc
            per = [args.extra // rounds + (1 if r < args.extra % rounds else 0) for r in range(rounds)]
            out["round_hdl_acc"] = []
            for r in range(rounds):
                if r > 0:  # relabel with the current model
                    _, e = predict(tr.ema, xpool)
                    labels, confidence = run_hdlabel(e, seeds, args.out, f"{name}.round{r}", args)
                c = labels[u] >= 0
                out["round_hdl_acc"].append(float(np.mean(labels[u][c] == yu[c])) if c.any() else None)
                out["mask_rate"] = train(tr, xl, yl, xu, per[r], args, gen, args.hdl_mode,
                                         hdl_targets(labels, confidence))
                out["iters"] += per[r]
        out.update(evaluate(tr, xte, yte))
        res[name] = out
        log(f"  {name} {out['acc']:.4f}/{out['f1']:.4f}", q)
    res["seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "result.json.tmp"), "w") as f:
        json.dump(res, f, indent=1)
    os.replace(os.path.join(args.out, "result.json.tmp"), os.path.join(args.out, "result.json"))
    if not args.keep_files:
        for name in os.listdir(args.out):
            if name.endswith((".emb.npy", ".seeds.npy")):
                os.remove(os.path.join(args.out, name))
    return res


# ----------------------------------------------------------------------------------------------------------- bench
COLUMNS = [("supervised", "supervised (seeds)"), ("fixmatch", "FixMatch"), ("control", "+ control"),
           ("hdl_1", "+ HDL (1 round)"), ("hdl_r", "+ HDL (R rounds)"), ("linear_seeds", "linear: seeds"),
           ("linear_seeds_hdl", "linear: seeds + HDL")]


def _bench_job(argv):
    args = parse_args(argv)
    return run_one(args)


def ms(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    v = np.array(vals) * 100
    return f"{v.mean():.1f} ± {v.std():.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def table(results, rounds):
    groups = {}
    for r in results:
        groups.setdefault((r["budget"], r["balance"]), []).append(r)
    head = ["labels/class", "balance", "seeds"] + [c[1].replace("R rounds", f"{rounds} rounds") for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in sorted(groups, key=lambda k: (k[0], k[1] != "balanced", k[1])):
        rs = groups[key]
        cells = [str(key[0]), key[1], str(len(rs))]
        for col, _ in COLUMNS:
            if col not in rs[0]:
                cells.append("–")
                continue
            cells.append(f"{ms([r[col]['acc'] for r in rs])} / {ms([r[col]['f1'] for r in rs])}")
        lines.append("| " + " | ".join(cells) + " |")
    lab = ["", "| labels/class | balance | pseudo-labels ≥ τ: acc / coverage | HDL: acc / coverage | "
               "HDL acc, all rows | HDL − control (test acc, points) | HDL-R − control |", "|---|---|---|---|---|---|---|"]
    for key in sorted(groups, key=lambda k: (k[0], k[1] != "balanced", k[1])):
        rs = groups[key]
        d1 = [r["hdl_1"]["acc"] - r["control"]["acc"] for r in rs]
        dr = [r["hdl_r"]["acc"] - r["control"]["acc"] for r in rs if "hdl_r" in r]
        lab.append(f"| {key[0]} | {key[1]} | {ms([r['pseudo']['acc_covered'] for r in rs])} / "
                   f"{ms([r['pseudo']['coverage'] for r in rs])} | {ms([r['hdl']['acc_covered'] for r in rs])} / "
                   f"{ms([r['hdl']['coverage'] for r in rs])} | {ms([r['hdl']['acc_all'] for r in rs])} | "
                   f"{ms(d1)} (HDL ahead in {sum(d > 0 for d in d1)}/{len(d1)}) | "
                   f"{ms(dr)} (ahead in {sum(d > 0 for d in dr)}/{len(dr)}) |")
    sel = ["", "| labels/class | balance | pseudo-labels ≥ τ: acc / coverage | "
               "HDL top-q at the same coverage: acc | difference (points, HDL ahead in x/n) | "
               + " | ".join(f"{c * 100:.0f} % coverage: max softmax / HDL" for c in SELECTIVE_COVERAGES) + " |",
           "|" + "---|" * (5 + len(SELECTIVE_COVERAGES))]
    for key in sorted(groups, key=lambda k: (k[0], k[1] != "balanced", k[1])):
        rs = [r for r in groups[key] if "selective" in r]
        if not rs:
            continue
        eq = [r["selective"]["equal_coverage"] for r in rs]
        d = [e["hdl_acc"] - e["classifier_acc"] for e in eq
             if e["hdl_acc"] is not None and e["classifier_acc"] is not None]
        cells = [str(key[0]), key[1], f"{ms([e['classifier_acc'] for e in eq])} / {ms([e['coverage'] for e in eq])}",
                 ms([e["hdl_acc"] for e in eq]), f"{ms(d)} (HDL ahead in {sum(x > 0 for x in d)}/{len(d)})"]
        for c in SELECTIVE_COVERAGES:
            at = [r["selective"]["at"].get(f"{c:g}") for r in rs]
            at = [a for a in at if a is not None]
            cells.append(f"{ms([a['classifier_acc'] for a in at])} / {ms([a['hdl_acc'] for a in at])}")
        sel.append("| " + " | ".join(cells) + " |")
    if len(sel) == 3:  # results from before the selective comparison: no rows
        sel = []
    return "\n".join(lines + lab + sel)


def bench(args, argv):
    os.makedirs(args.out, exist_ok=True)
    jobs = []
    passthrough = []
    skip = {"--budgets", "--balances", "--seeds", "--jobs", "--out", "--md", "--budget", "--balance", "--seed"}
    it = iter(argv[1:])
    for tok in it:
        name = tok.split("=")[0]
        if name in skip:
            if "=" not in tok:
                next(it, None)
            continue
        passthrough.append(tok)
    for b in [int(v) for v in args.budgets.split(",")]:
        for bal in args.balances.split(","):
            for s in [int(v) for v in args.seeds.split(",")]:
                out = os.path.join(args.out, f"b{b}-{bal}-s{s}")
                jobs.append(["run", "--budget", str(b), "--balance", bal, "--seed", str(s), "--out", out] + passthrough)
    t0 = time.time()
    results = []
    with cf.ProcessPoolExecutor(max_workers=args.jobs) as ex:
        for r in ex.map(_bench_job, jobs):
            results.append(r)
            log(f"done {r['budget']}/class {r['balance']} seed {r['seed']} in {r['seconds']} s "
                f"({len(results)}/{len(jobs)}, {time.time() - t0:.0f} s)")
    wall = time.time() - t0
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"command": " ".join(["Scripts/retrain.py"] + argv), "seconds": round(wall, 1), "results": results}, f, indent=1)
    md = table(results, args.rounds)
    print(md)
    if args.md:
        cmd = "Scripts/retrain.py " + " ".join(argv)
        text = (f"# Retraining with HDL labels (Fashion-MNIST, CPU)\n\n```sh\n{cmd}\n```\n\n"
                f"Wall time {wall / 60:.1f} min on {os.cpu_count()} cores ({args.jobs} runs in parallel, "
                f"{args.threads} torch thread each). Cells: test accuracy / macro-F1 (%), mean ± std over seeds, "
                f"on the full 10,000-image test split.\n\n{md}\n")
        tmp = args.md + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.md)
    return 0


# ----------------------------------------------------------------------------------------------------------- cli
def parse_args(argv):
    ap = argparse.ArgumentParser(prog="retrain.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("run", "bench", "table"),
                    help="run: one split; bench: the grid; table: markdown from the result.json files under --out")
    ap.add_argument("--data", default=os.environ.get("HDLABEL_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    ap.add_argument("--out", default="runs/retrain")
    ap.add_argument("--budget", type=int, default=4, help="run: labels per class (head class under a long tail)")
    ap.add_argument("--balance", default="balanced", help="run: balanced or rhoN (e.g. rho100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", default="4,10", help="bench")
    ap.add_argument("--balances", default="balanced,rho100", help="bench")
    ap.add_argument("--seeds", default="0,1,2", help="bench")
    ap.add_argument("--jobs", type=int, default=2, help="bench: runs in parallel")
    ap.add_argument("--md", help="bench: markdown file to write")
    ap.add_argument("--pool", type=int, default=10000, help="cap on unlabeled train images (0 = all)")
    ap.add_argument("--test-n", type=int, default=0, help="first N test images only (0 = all 10,000)")
    ap.add_argument("--iters", type=int, default=700, help="FixMatch (and supervised) iterations before relabeling")
    ap.add_argument("--extra", type=int, default=300, help="extra iterations of control and HDL continuations")
    ap.add_argument("--rounds", type=int, default=3, help="R for the multi-round HDL run (1 = skip it)")
    ap.add_argument("--hdl-mode", choices=("hdl", "alongside"), default="hdl",
                    help="hdl: HDL labels replace the thresholded pseudo-labels; alongside: both loss terms")
    ap.add_argument("--hdl-min-confidence", type=float, default=0.0, help="use HDL labels with confidence >= this")
    ap.add_argument("--hdl-args", default="", help="extra hdlabel options, e.g. '--k 10'")
    ap.add_argument("--hdlabel", default=os.path.join(ROOT, ".build", "release", "hdlabel"))
    ap.add_argument("--mpi", type=int, default=0, help="relabel with mpirun -np P hdlabel cluster")
    ap.add_argument("--batch", type=int, default=16, help="labeled batch (unlabeled = mu x batch)")
    ap.add_argument("--mu", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--lambda-u", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.99, help="EMA decay (0.99 suits short runs; FixMatch uses 0.999)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--keep-files", action="store_true", help="keep the embeddings/seeds .npy of each relabeling")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.balance != "balanced" and not (a.balance.startswith("rho") and a.balance[3:].replace(".", "").isdigit()):
        ap.error(f"--balance must be balanced or rhoN, got '{a.balance}'")
    return a


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.command != "table" and not (os.path.isfile(args.hdlabel) and os.access(args.hdlabel, os.X_OK)):
        print(f"retrain.py: error: hdlabel binary '{args.hdlabel}' not found; run `swift build -c release` "
              "or pass --hdlabel PATH", file=sys.stderr)
        return 1
    if args.command == "bench":
        return bench(args, argv)
    if args.command == "table":  # e.g. after an interrupted bench: whatever runs finished
        results = []
        for d in sorted(os.listdir(args.out)):
            p = os.path.join(args.out, d, "result.json")
            if os.path.exists(p):
                with open(p) as f:
                    results.append(json.load(f))
        print(table(results, args.rounds))
        return 0
    res = run_one(args)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
