"""Course profiles: ``fast`` (offline, CPU, seconds) and ``full`` (real data, ImageNet weights, GPU).

The profile is chosen by the ``COURSE_PROFILE`` environment variable. Every notebook starts with
:func:`setup`, which prints one line: profile, device and data location.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

PROFILES = ("fast", "full")
# Autograding (COURSE_GRADING=1) runs every lesson on one seed and at most this many epochs: one
# student's course then grades in well under a minute on 2 cores (benchmarks/bench_autograde.py).
GRADING_MAX_EPOCHS = 1
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Profile:
    """Everything that differs between the fast and the full profile."""

    name: str
    device: torch.device
    data_dir: Path
    image_size: int  # side of the training crop (224 in the full profile)
    resize_size: int  # test images are resized to this, then centre-cropped to ``image_size``
    batch_size: int
    num_workers: int
    crop_scale: tuple[float, float] = (0.08, 1.0)  # RandomResizedCrop's area range
    max_epochs: int | None = None  # COURSE_MAX_EPOCHS: caps every chapter's epochs (smoke runs)
    subset: int | None = None  # COURSE_SUBSET: at most this many images per class and split
    grading: bool = False  # COURSE_GRADING=1 (nbgrader_config.py sets it for autograding)
    valid_frac: float = 0.2  # share of train/ held out for validation (stratified, seeded)

    def epochs(self, n: int) -> int:
        """``n`` epochs, capped by ``COURSE_MAX_EPOCHS`` (e.g. ``COURSE_MAX_EPOCHS=1`` to try the full
        profile on a CPU in minutes; numbers are then meaningless), and at most
        ``GRADING_MAX_EPOCHS`` when autograding (the graded cells train their own tiny models; the
        lessons only have to run)."""
        cap = self.max_epochs
        if self.grading:
            cap = GRADING_MAX_EPOCHS if cap is None else min(cap, GRADING_MAX_EPOCHS)
        return n if cap is None else max(1, min(n, cap))

    def seeds(self, n: int) -> range:
        """Seeds for repeating a lesson's experiment ``n`` times (mean and spread): one run only when
        autograding (no graded cell needs the repeats) or in a smoke run (``COURSE_MAX_EPOCHS``)."""
        return range(1 if self.grading or self.smoke else n)

    @property
    def smoke(self) -> bool:
        """A smoke run (``COURSE_MAX_EPOCHS`` set): every cell runs, no figure means anything, so
        timings take one pass (:func:`helpers.compression.latency_ms`)."""
        return self.max_epochs is not None

    @property
    def fast(self) -> bool:
        return self.name == "fast"

    @property
    def checks(self) -> bool:
        """Whether a lesson's measured figures can be checked (``if profile.checks: assert ...``):
        the fast profile run as students run it, not autograding or a smoke run, where epochs and
        seeds are cut and the figures mean nothing."""
        return self.fast and not self.grading and not self.smoke

    def __str__(self) -> str:
        return f"profile={self.name} device={self.device} data={self.data_dir}"


def try_device(name: str = "full") -> torch.device:
    """CUDA if present, else Apple MPS, else CPU. The fast profile always uses the CPU."""
    if name == "fast":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def data_root() -> Path:
    """Where downloads and generated data live: ``$COURSE_DATA_DIR`` or ``<repo>/data``."""
    return Path(os.environ.get("COURSE_DATA_DIR") or REPO_ROOT / "data").expanduser().resolve()


def _env_int(var: str) -> int | None:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{var}={raw!r} must be a positive integer (or unset); e.g. `export {var}=2`")
    return int(raw)


def get_profile(name: str | None = None) -> Profile:
    """The active profile (``COURSE_PROFILE``, default ``fast``). Two knobs for smoke runs of the full
    profile (CI, or a first try on a laptop): ``COURSE_MAX_EPOCHS`` caps the epochs of every
    training run, ``COURSE_SUBSET`` the images per class of each split."""
    name = (name or os.environ.get("COURSE_PROFILE") or "fast").strip().lower()
    knobs = {"max_epochs": _env_int("COURSE_MAX_EPOCHS"), "subset": _env_int("COURSE_SUBSET"),
             "grading": os.environ.get("COURSE_GRADING", "") == "1"}
    if name not in PROFILES:
        raise ValueError(
            f"COURSE_PROFILE={name!r} is not a course profile; use one of {PROFILES} "
            "(e.g. `export COURSE_PROFILE=fast`)."
        )
    if name == "fast":
        return Profile("fast", try_device("fast"), data_root(), image_size=32, resize_size=36,
                       batch_size=32, num_workers=0, crop_scale=(0.35, 1.0),
                       valid_frac=0.5, **knobs)  # 200 validation images: one image = 0.5 point
    device = try_device("full")
    return Profile("full", device, data_root(), image_size=224, resize_size=256,
                   batch_size=128, num_workers=min(4, os.cpu_count() or 1), **knobs)


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a seeded generator for data loaders and splits."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def setup(name: str | None = None, seed: int | None = 0) -> Profile:
    """Seed everything, print the one-line report every notebook starts with, return the profile."""
    profile = get_profile(name)
    if seed is not None:
        seed_everything(seed)
    if profile.fast and not os.environ.get("OMP_NUM_THREADS"):  # an explicit setting wins (CI's AVX2 leg)
        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    print(f"[course] {profile}")
    return profile
