"""Shared helpers for the Python edge tests (run by Scripts/py-tests.sh inside .venv/)."""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = os.path.join(ROOT, "Scripts")
sys.path.insert(0, SCRIPTS)
import tv_compat  # noqa: E402,F401  (torchvision next to the CPU torch)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def run_script(name, *args, env=None):
    e = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, name), *map(str, args)], capture_output=True,
                          text=True, env=e, timeout=600)


def embed(*args, env=None):
    return run_script("embed.py", *args, "--quiet", env=env)


def error_lines(r):
    return [line for line in r.stderr.splitlines() if line.strip()]


@pytest.fixture
def image_folder(tmp_path):
    """Six small RGB PNGs in two sub-folders."""
    from PIL import Image
    d = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for i in range(6):
        sub = d / ("a" if i < 3 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(sub / f"img{i}.png")
    return d
