"""The offline mini world of the fast profile: small, real, generated image data sets.

* a **source** data set of ``len(SOURCE_CLASSES)`` food-like shape classes (the role of ImageNet),
  on which the mini source model is pretrained (``sourcemodel/build_source_model.py``);
* a **target** data set with the d2l hotdog layout (``train|test`` x ``hotdog|not-hotdog``), drawn in
  a different style (backgrounds, colours, sizes), a few hundred images: the role of the hotdog set.
  Half of its not-hotdog images show ``UNSEEN_CLASSES``, foods the source model never saw, two of them
  hotdog look-alikes (a bare sausage, a baguette): the source model's features are a head start,
  not the answer, so "frozen vs fine-tuned" and "pretrained vs scratch" are measured, not built in.

Everything is generated deterministically from a seed with Pillow and written as JPEG files, so the
same ``ImageFolder`` + transforms code runs in both profiles. Generation is atomic: a folder is
written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SOURCE_CLASSES: tuple[str, ...] = ("banana", "burger", "carrot", "cookie", "donut", "hotdog",
                                   "pizza", "pretzel", "sandwich", "waffle")
# Foods the source data set never shows; the target's not-hotdog half is drawn from them.
UNSEEN_CLASSES: tuple[str, ...] = ("apple", "baguette", "fries", "sausage")
WORLD_VERSION = 2
# Images per class. The fast profile holds out half of train/ for validation (profile.valid_frac):
# 200 validation images, so one image is 0.5 percentage point of accuracy.
TARGET_SPLITS = {"train": 200, "test": 150}
SOURCE_SPLITS = {"train": 300, "test": 50}


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], amount: int) -> tuple[int, ...]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _stadium(cx: float, cy: float, length: float, width: float, angle: float) -> list[tuple[float, float]]:
    """Polygon of a capsule (a sausage, a bun) centred at (cx, cy), rotated by ``angle`` radians."""
    r, half = width / 2, max(0.0, length / 2 - width / 2)
    pts = [(half + r * math.cos(t), r * math.sin(t)) for t in np.linspace(-math.pi / 2, math.pi / 2, 10)]
    pts += [(-half + r * math.cos(t), r * math.sin(t)) for t in np.linspace(math.pi / 2, 3 * math.pi / 2, 10)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def _rotated_rect(cx, cy, w, h, angle):
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in
            ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2))]


def draw_object(draw: ImageDraw.ImageDraw, name: str, rng: np.random.Generator, cx: float, cy: float,
                size: float, jitter: int) -> None:
    """Draw one object of class ``name`` of about ``size`` pixels centred at (cx, cy)."""
    a = rng.uniform(0, math.pi)
    j = lambda rgb: _jitter(rng, rgb, jitter)  # noqa: E731
    if name == "hotdog":
        draw.polygon(_stadium(cx, cy, size, size * 0.42, a), fill=j((214, 170, 100)))
        draw.polygon(_stadium(cx, cy, size * 1.12, size * 0.2, a), fill=j((170, 60, 40)))
        if rng.random() < 0.7:  # mustard
            pts = [(cx + t * math.cos(a) + 1.5 * math.sin(7 * t / size * math.pi) * -math.sin(a),
                    cy + t * math.sin(a) + 1.5 * math.sin(7 * t / size * math.pi) * math.cos(a))
                   for t in np.linspace(-size * 0.4, size * 0.4, 12)]
            draw.line(pts, fill=j((235, 205, 40)), width=1)
    elif name == "banana":
        box = [cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2]
        start = rng.uniform(0, 360)
        draw.arc(box, start, start + 120, fill=j((235, 210, 60)), width=max(2, int(size * 0.18)))
    elif name == "burger":
        w = size
        for k, col in enumerate([(200, 150, 80), (90, 50, 30), (80, 160, 60), (200, 150, 80)]):
            y0 = cy - size * 0.35 + k * size * 0.2
            draw.rounded_rectangle([cx - w / 2, y0, cx + w / 2, y0 + size * 0.18], radius=2, fill=j(col))
    elif name == "carrot":
        c, s = math.cos(a), math.sin(a)
        tip = (cx + c * size * 0.6, cy + s * size * 0.6)
        base = [(cx - c * size * 0.5 - s * size * 0.15, cy - s * size * 0.5 + c * size * 0.15),
                (cx - c * size * 0.5 + s * size * 0.15, cy - s * size * 0.5 - c * size * 0.15)]
        draw.polygon([tip] + base, fill=j((240, 130, 30)))
    elif name == "donut":
        r = size / 2
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=j((190, 120, 70)), width=max(2, int(r * 0.5)))
    elif name == "pizza":
        r = size / 2
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=j((235, 180, 80)))
        for _ in range(4):
            px, py = cx + rng.uniform(-r / 2, r / 2), cy + rng.uniform(-r / 2, r / 2)
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=j((180, 40, 30)))
    elif name == "pretzel":
        r = size / 4
        for dx in (-r, r):
            draw.ellipse([cx + dx - r, cy - r, cx + dx + r, cy + r], outline=j((140, 80, 40)), width=2)
    elif name == "sandwich":
        pts = [(cx + size / 2 * math.cos(a + k * 2 * math.pi / 3), cy + size / 2 * math.sin(a + k * 2 * math.pi / 3))
               for k in range(3)]
        draw.polygon(pts, fill=j((230, 215, 170)), outline=j((120, 170, 70)))
    elif name == "waffle":
        draw.polygon(_rotated_rect(cx, cy, size * 0.8, size * 0.8, a), fill=j((215, 160, 80)))
        for t in (-0.2, 0.0, 0.2):
            p = _rotated_rect(cx, cy, size * 0.8, 1, a)
            draw.line([(x + t * size * -math.sin(a), y + t * size * math.cos(a)) for x, y in p[:2]],
                      fill=j((150, 100, 40)), width=1)
            draw.line(_rotated_rect(cx + t * size * math.cos(a), cy + t * size * math.sin(a), 1, size * 0.8, a)[1:3],
                      fill=j((150, 100, 40)), width=1)
    elif name == "sausage":  # a hotdog without its bun
        draw.polygon(_stadium(cx, cy, size * 1.05, size * 0.22, a), fill=j((170, 60, 40)))
    elif name == "baguette":  # a bun without its sausage, longer and slimmer
        draw.polygon(_stadium(cx, cy, size * 1.15, size * 0.3, a), fill=j((214, 170, 100)))
        for t in (-0.25, 0.0, 0.25):
            px, py = cx + t * size * math.cos(a), cy + t * size * math.sin(a)
            draw.line([(px - 2 * math.sin(a) - 2 * math.cos(a), py + 2 * math.cos(a) - 2 * math.sin(a)),
                       (px + 2 * math.sin(a) + 2 * math.cos(a), py - 2 * math.cos(a) + 2 * math.sin(a))],
                      fill=j((150, 105, 50)), width=1)
    elif name == "apple":
        r = size * 0.38
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=j((200, 40, 40)))
        draw.line([(cx, cy - r), (cx + 2, cy - r - 4)], fill=j((90, 60, 30)), width=2)
        draw.ellipse([cx + 1, cy - r - 4, cx + 6, cy - r], fill=j((70, 150, 50)))
    elif name == "fries":
        for k in range(6):
            fx = cx + (k - 2.5) * size * 0.12
            tilt = rng.uniform(-0.25, 0.25) * size
            draw.line([(fx, cy + size * 0.35), (fx + tilt * 0.3, cy - size * 0.35 + rng.uniform(0, size * 0.15))],
                      fill=j((240, 205, 70)), width=max(2, int(size * 0.08)))
        draw.rectangle([cx - size * 0.38, cy + size * 0.1, cx + size * 0.38, cy + size * 0.4], fill=j((200, 30, 40)))
    elif name == "cookie":
        r = size * 0.4
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=j((180, 130, 80)))
        for _ in range(5):
            px, py = cx + rng.uniform(-r / 1.6, r / 1.6), cy + rng.uniform(-r / 1.6, r / 1.6)
            draw.ellipse([px - 1, py - 1, px + 1, py + 1], fill=j((60, 35, 20)))
    else:
        raise KeyError(f"unknown class {name!r}; use one of {SOURCE_CLASSES + UNSEEN_CLASSES}")


def render(name: str, seed: int, style: str = "source") -> Image.Image:
    """One deterministic image of class ``name``. ``style="target"`` draws the target domain:
    other image sizes and aspect ratios, textured backgrounds, stronger colour jitter, blur."""
    rng = np.random.default_rng(seed)
    if style == "source":
        w = h = 40
        bg = rng.integers(60, 256, size=3)
        noise = 12
    else:
        w, h = int(rng.integers(34, 60)), int(rng.integers(34, 60))
        bg = rng.integers(20, 230, size=3)
        noise = 30
    arr = np.clip(bg[None, None, :] + rng.normal(0, noise, size=(h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    if style == "target":  # table-cloth stripes
        step = int(rng.integers(5, 12))
        col = tuple(int(c) for c in rng.integers(0, 256, size=3))
        for x in range(-h, w, step):
            draw.line([(x, 0), (x + h, h)], fill=col, width=1)
    side = min(w, h)
    size = side * rng.uniform(0.45, 0.75)
    cx = w / 2 + rng.uniform(-0.12, 0.12) * w
    cy = h / 2 + rng.uniform(-0.12, 0.12) * h
    draw_object(draw, name, rng, cx, cy, size, jitter=25 if style == "source" else 45)
    if style == "target" and rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(0.6))
    return img


def _write_atomically(final: Path, fill) -> Path:
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        fill(tmp)
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def not_hotdog_class(i: int) -> str:
    """The food of the ``i``-th not-hotdog image: even ``i`` an unseen food, odd ``i`` a source one."""
    if i % 2 == 0:
        return UNSEEN_CLASSES[(i // 2) % len(UNSEEN_CLASSES)]
    others = [c for c in SOURCE_CLASSES if c != "hotdog"]
    return others[(i // 2) % len(others)]


def ensure_target_dataset(data_dir: str | Path, seed: int = 1) -> Path:
    """Generate (once) the mini hotdog data set and return its folder (hotdog layout)."""
    def fill(root: Path) -> None:
        for split_no, (split, n) in enumerate(TARGET_SPLITS.items()):
            for label in ("hotdog", "not-hotdog"):
                folder = root / split / label
                folder.mkdir(parents=True)
                for i in range(n):
                    s = seed * 1_000_003 + split_no * 100_000 + (label == "hotdog") * 50_000 + i
                    name = "hotdog" if label == "hotdog" else not_hotdog_class(i)
                    render(name, s, "target").save(folder / f"{i:04d}.jpg", quality=90)

    return _write_atomically(Path(data_dir) / f"mini-hotdog-v{WORLD_VERSION}", fill)


def ensure_source_dataset(data_dir: str | Path, seed: int = 7) -> Path:
    """Generate (once) the mini source data set (``train|test`` x ``SOURCE_CLASSES``)."""
    def fill(root: Path) -> None:
        for split_no, (split, n) in enumerate(SOURCE_SPLITS.items()):
            for k, name in enumerate(SOURCE_CLASSES):
                folder = root / split / name
                folder.mkdir(parents=True)
                for i in range(n):
                    s = seed * 1_000_003 + split_no * 500_000 + k * 10_000 + i
                    render(name, s, "source").save(folder / f"{i:04d}.jpg", quality=90)

    return _write_atomically(Path(data_dir) / f"mini-source-v{WORLD_VERSION}", fill)
