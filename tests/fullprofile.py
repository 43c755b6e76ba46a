"""Stand-ins for the full profile's downloads, and a runner that executes a notebook with them.

The full profile needs the d2l hotdog data set and ImageNet ResNet-18 weights; neither can be
downloaded here or in CI. :func:`make_standins` builds what the real code paths look for:

- a tiny hotdog-layout folder (``hotdog/{train,test}/{hotdog,not-hotdog}``, JPEGs of 200-600 px,
  the real folder names) in ``COURSE_DATA_DIR``, where ``download.download_extract("hotdog")``
  finds an extracted data set and downloads nothing;
- a random ResNet-18 state dict at torch hub's cache path for ``ResNet18_Weights.IMAGENET1K_V1``
  (``$TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth``), which ``download.load_state_dict``
  (``torch.hub.load_state_dict_from_url``) loads as if it had been downloaded before.

:func:`run_notebook` executes every cell with ``COURSE_PROFILE=full`` on the CPU and
``COURSE_MAX_EPOCHS=1``, and returns the cells that raised (accuracies are meaningless there).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import numpy as np
import torch
import torchvision
from nbclient import NotebookClient
from PIL import Image

SPLITS = ("train", "test")
CLASSES = ("hotdog", "not-hotdog")


def make_hotdog_standin(data_dir: Path, per_class: int = 8, seed: int = 0) -> Path:
    """``data_dir/hotdog`` with ``per_class`` JPEGs per class and split (random sizes 200-600 px:
    warm, roughly elongated blobs for hotdogs, other colours otherwise)."""
    rng = np.random.default_rng(seed)
    root = data_dir / "hotdog"
    for split in SPLITS:
        for k, cls in enumerate(CLASSES):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                w, h = (int(v) for v in rng.integers(200, 601, size=2))
                img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) // 2
                img[h // 3: 2 * h // 3, w // 6: 5 * w // 6] = (200, 120, 40) if k == 0 else (40, 120, 200)
                Image.fromarray(img).save(folder / f"{i:03d}.jpg", quality=85)
    return root


def make_weights_standin(torch_home: Path, seed: int = 0) -> Path:
    """A random ResNet-18 state dict where torch hub caches ``IMAGENET1K_V1``."""
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    path = torch_home / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def make_standins(root: Path, per_class: int = 8) -> dict[str, str]:
    """Create both stand-ins under ``root``; return the environment a full-profile kernel needs."""
    make_hotdog_standin(root / "data", per_class)
    make_weights_standin(root / "torch")
    return {"COURSE_PROFILE": "full", "COURSE_DATA_DIR": str(root / "data"), "TORCH_HOME": str(root / "torch"),
            "COURSE_MAX_EPOCHS": "1", "CUDA_VISIBLE_DEVICES": "", "MPLBACKEND": "Agg"}


def run_notebook(path: Path, env: dict[str, str], timeout: int = 600) -> tuple[list[str], float]:
    """Execute ``path`` (errors do not stop it) with ``env`` added to the kernel's environment.
    Returns ``(["cell N: Error: message", ...], seconds)``."""
    nb = nbformat.read(str(path), as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                       shutdown_kernel="immediate",  # no heap teardown to wait for (nbgrader_config.py)
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    errors = [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb.cells)
              if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return errors, seconds
