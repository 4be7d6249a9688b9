import hashlib
import json
import os

import numpy as np
import pytest
import torch

from conftest import embed, error_lines


def manifest(out):
    with open(str(out)[:-4] + ".manifest.json") as f:
        return json.load(f)


def test_text_minilm(tmp_path):
    texts = tmp_path / "t.txt"
    texts.write_text("a cat sits on the mat\na kitten is sitting on a rug\nthe stock market fell sharply\n")
    out = tmp_path / "t.npy"
    r = embed(texts, "--encoder", "text", "--l2", "-o", out)
    assert r.returncode == 0, r.stderr
    x = np.load(out)
    assert x.shape == (3, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert x[0] @ x[1] > x[0] @ x[2] + 0.2  # the real MiniLM: cats closer to kittens than to stocks
    assert (tmp_path / "t.ids.txt").read_text().split() == ["0", "1", "2"]
    m = manifest(out)
    assert m["rows"] == 3 and m["dimensions"] == 384 and m["l2_normalised"]


def test_text_csv_ids(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,text\ndoc-a,hello world\ndoc-b,\"good bye, world\"\n")
    out = tmp_path / "c.npy"
    r = embed(p, "--encoder", "text", "-o", out)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.ids.txt").read_text().split() == ["doc-a", "doc-b"]


def test_open_clip_tiny(tmp_path, image_folder):
    import open_clip
    cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
           "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 16, "heads": 2, "layers": 1}}
    cfg_path = tmp_path / "tinyclip-test.json"
    cfg_path.write_text(json.dumps(cfg))
    open_clip.add_model_config(str(cfg_path))
    torch.manual_seed(0)
    model = open_clip.create_model("tinyclip-test", pretrained=None)
    w = tmp_path / "clip.pt"
    torch.save(model.state_dict(), w)
    out = tmp_path / "e.npy"
    r = embed(image_folder, "--encoder", "open_clip", "--arch", "tinyclip-test", "--model-config", cfg_path,
              "--weights", w, "--l2", "-o", out)
    assert r.returncode == 0, r.stderr
    x = np.load(out)
    assert x.shape == (6, 16)
    ids = (tmp_path / "e.ids.txt").read_text().split()
    assert ids == [f"a/img{i}.png" for i in range(3)] + [f"b/img{i}.png" for i in range(3, 6)]
    # same numbers as encoding the images directly
    from PIL import Image
    from torchvision import transforms as T
    tf = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(32), T.ToTensor(),
                    T.Normalize(open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)])
    batch = torch.stack([tf(Image.open(image_folder / i).convert("RGB")) for i in ids])
    with torch.no_grad():
        ref = model.eval().encode_image(batch).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.allclose(x, ref, atol=1e-4)


def test_timm_tiny_safetensors(tmp_path, image_folder):
    import timm
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=7)  # other head size than the default
    w = tmp_path / "timm.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(w))
    out = tmp_path / "e.npy"
    r = embed(image_folder, "--encoder", "timm", "--arch", "test_resnet", "--weights", w, "--image-size", "32", "-o", out)
    assert r.returncode == 0, r.stderr
    model.reset_classifier(0)
    x = np.load(out)
    assert x.shape == (6, model.num_features)


def test_torchvision_tiny(tmp_path, image_folder):
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5)
    w = tmp_path / "rn18.pth"
    torch.save({"state_dict": model.state_dict()}, w)
    out = tmp_path / "e.npy"
    r = embed(image_folder, "--encoder", "torchvision", "--arch", "resnet18", "--weights", w, "--image-size", "32",
              "--shards", "2", "--shard-tile", "4", "-o", out)
    assert r.returncode == 0, r.stderr
    x = np.load(out)
    assert x.shape == (6, 512)  # the input of fc
    s0, s1 = np.load(tmp_path / "e.rank0.npy"), np.load(tmp_path / "e.rank1.npy")
    assert len(s0) == 4 and len(s1) == 2  # hdlabel cluster --tile 4 on 2 ranks: whole tiles
    assert np.array_equal(np.concatenate([s0, s1]), x)
    assert [f["rows"] for f in manifest(out)["shards"]["files"]] == [[0, 4], [4, 6]]


OWN_MODEL = '''
import torch
from torch import nn
class Net(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 3)
    def forward(self, x):
        return self.head(self.body(x))
'''


def test_own_model_layer_and_torchscript(tmp_path):
    (tmp_path / "net.py").write_text(OWN_MODEL)
    import importlib.util
    spec = importlib.util.spec_from_file_location("net", tmp_path / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    net = mod.Net(hidden=8).eval()
    w = tmp_path / "net.pt"
    torch.save(net.state_dict(), w)
    imgs = np.random.default_rng(1).integers(0, 256, (5, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "imgs.npy", imgs)
    out = tmp_path / "e.npy"
    r = embed(tmp_path / "imgs.npy", "--encoder", "own", "--model-file", tmp_path / "net.py", "--model-class", "Net",
              "--model-args", '{"hidden": 8}', "--weights", w, "--layer", "body", "-o", out)
    assert r.returncode == 0, r.stderr
    with torch.no_grad():
        ref = net.body(torch.from_numpy(imgs).float().div(255).unsqueeze(1)).numpy()
    assert np.allclose(np.load(out), ref, atol=1e-5)
    # TorchScript: the model's output (hooks on a loaded TorchScript module either work or fail with one line)
    torch.jit.script(net).save(str(tmp_path / "net.ts"))
    out2 = tmp_path / "ts.npy"
    r = embed(tmp_path / "imgs.npy", "--encoder", "own", "--torchscript", tmp_path / "net.ts", "-o", out2)
    assert r.returncode == 0, r.stderr
    with torch.no_grad():
        assert np.allclose(np.load(out2), net(torch.from_numpy(imgs).float().div(255).unsqueeze(1)).numpy(), atol=1e-5)
    r = embed(tmp_path / "imgs.npy", "--encoder", "own", "--torchscript", tmp_path / "net.ts", "--layer", "body",
              "-o", tmp_path / "ts2.npy")
    if r.returncode == 0:
        assert np.allclose(np.load(tmp_path / "ts2.npy"), ref, atol=1e-5)
    else:
        assert len(error_lines(r)) == 1 and "layer 'body'" in r.stderr
    r = embed(tmp_path / "imgs.npy", "--encoder", "own", "--model-file", tmp_path / "net.py", "--model-class", "Net",
              "--layer", "nope", "-o", tmp_path / "x.npy")
    assert r.returncode == 1 and "layer 'nope' not found" in r.stderr and len(error_lines(r)) == 1


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def test_resume_after_interruption(tmp_path):
    (tmp_path / "net.py").write_text(OWN_MODEL)
    imgs = np.random.default_rng(2).integers(0, 256, (10, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "imgs.npy", imgs)
    import importlib.util
    spec = importlib.util.spec_from_file_location("net", tmp_path / "net.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.save(mod.Net().state_dict(), tmp_path / "w.pt")
    common = [tmp_path / "imgs.npy", "--encoder", "own", "--model-file", tmp_path / "net.py", "--model-class", "Net",
              "--weights", tmp_path / "w.pt", "--layer", "body", "--chunk-size", "3", "--batch-size", "2", "--l2"]
    full = tmp_path / "full.npy"
    assert embed(*common, "-o", full).returncode == 0
    out = tmp_path / "out.npy"
    r = embed(*common, "-o", out, env={"HDLABEL_EMBED_TEST_STOP_AFTER": "1"})
    assert r.returncode == 75, r.stderr
    assert not out.exists()
    parts = sorted(os.listdir(str(out) + ".parts"))
    assert parts == ["chunk-000000.npz", "fingerprint.json"]
    r = embed(*common, "-o", out)
    assert r.returncode == 0, r.stderr
    assert manifest(out)["chunks_resumed"] == 1 and manifest(out)["chunks"] == 4
    assert sha(out) == sha(full)
    assert not os.path.exists(str(out) + ".parts")
    assert not [n for n in os.listdir(tmp_path) if ".tmp" in n]


def test_unreadable_image_listed(tmp_path, image_folder):
    import torchvision
    (image_folder / "a" / "broken.png").write_bytes(b"not a png")
    (image_folder / "b" / "empty.jpg").write_bytes(b"")
    w = tmp_path / "rn.pth"
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), w)
    args = [image_folder, "--encoder", "torchvision", "--arch", "resnet18", "--weights", w, "--image-size", "32"]
    r = embed(*args, "-o", tmp_path / "f.npy")
    assert r.returncode == 1
    assert len(error_lines(r)) == 1
    assert "a/broken.png" in r.stderr and "b/empty.jpg" in r.stderr and "2 unreadable" in r.stderr
    assert not (tmp_path / "f.npy").exists()
    r = embed(*args, "--on-error", "skip", "-o", tmp_path / "s.npy")
    assert r.returncode == 0, r.stderr
    assert "a/broken.png" in r.stderr
    assert np.load(tmp_path / "s.npy").shape[0] == 6
    assert sorted(manifest(tmp_path / "s.npy")["skipped"]) == ["a/broken.png", "b/empty.jpg"]
    assert "broken" not in (tmp_path / "s.ids.txt").read_text()


def test_mismatched_weights(tmp_path, image_folder):
    import torchvision
    w = tmp_path / "mobilenet.pth"
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=3).state_dict(), w)
    r = embed(image_folder, "--encoder", "torchvision", "--arch", "resnet18", "--weights", w, "-o", tmp_path / "x.npy")
    assert r.returncode == 1
    lines = error_lines(r)
    assert len(lines) == 1 and "does not match architecture 'resnet18'" in lines[0], r.stderr
    import timm
    w2 = tmp_path / "t.pth"
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), w2)
    r = embed(image_folder, "--encoder", "timm", "--arch", "test_resnet", "--weights", w2, "-o", tmp_path / "y.npy")
    assert r.returncode == 1 and len(error_lines(r)) == 1 and "does not match architecture" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["--encoder", "word2vec"], "unknown encoder 'word2vec'"),
    (["--encoder", "timm", "--arch", "no_such_net", "--weights", "w.pt"], "unknown timm architecture"),
    (["--encoder", "torchvision", "--arch", "resnet18"], "needs --weights"),
])
def test_unknown_encoder_or_arch(tmp_path, image_folder, args, needle):
    r = embed(image_folder, *args, "-o", tmp_path / "x.npy")
    assert r.returncode == 1
    lines = error_lines(r)
    assert len(lines) == 1 and needle in lines[0], r.stderr


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    r = embed(tmp_path / "empty", "--encoder", "torchvision", "--arch", "resnet18", "--weights", "w.pt",
              "-o", tmp_path / "x.npy")
    assert r.returncode == 1
    lines = error_lines(r)
    assert len(lines) == 1 and "no images in folder" in lines[0], r.stderr
