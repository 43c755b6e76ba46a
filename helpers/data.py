"""Data: the hotdog chapter's transforms, robust image reading, datasets and loaders per profile."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import torch
import torchvision
from PIL import Image, ImageFile
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms as T

from helpers.profile import Profile

ImageFile.LOAD_TRUNCATED_IMAGES = False
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageReadError(OSError):
    """An image file is truncated, corrupt or not an image; the message names it."""


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit (``I;16*``) and 32-bit integer (``I``) grayscale scaled to 8 bits (``L``): Pillow's own
    ``convert("RGB")`` clips them at 255, so a mid-gray 16-bit image comes out almost white.
    ``I`` images holding 16-bit data (older Pillow) are scaled as 16-bit; 8-bit-range ones kept."""
    import numpy as np

    a = np.asarray(im)
    if im.mode == "F":
        scaled = a.clip(0, 255) if a.max(initial=0) > 1 else a.clip(0, 1) * 255
    else:
        a = a.astype(np.float64)
        wide = im.mode.startswith("I;16") or a.max(initial=0) > 255
        scaled = (a / 257.0 if wide else a).clip(0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), "L")


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as RGB: grayscale (8- and 16-bit: ``I;16`` is scaled to 8 bits), palette, CMYK
    and RGBA (composited on white) are converted; a truncated, empty or unreadable file raises
    :class:`ImageReadError` naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode.startswith("I") or im.mode == "F":
                return _to_8bit(im).convert("RGB")
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            return im.convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"cannot read image {path}: {err}. Replace or delete this file.") from err


def normalize() -> T.Normalize:
    return T.Normalize(IMAGENET_MEAN, IMAGENET_STD)


def train_transform(profile: Profile) -> T.Compose:
    """Random resized crop + horizontal flip + ImageNet normalisation (the hotdog chapter's)."""
    return T.Compose([T.RandomResizedCrop(profile.image_size, scale=profile.crop_scale),
                      T.RandomHorizontalFlip(), T.ToTensor(), normalize()])


def test_transform(profile: Profile) -> T.Compose:
    """Resize the shorter side, then centre-crop (256 -> 224 in the full profile)."""
    return T.Compose([T.Resize(profile.resize_size), T.CenterCrop(profile.image_size),
                      T.ToTensor(), normalize()])


def hotdog_dir(profile: Profile) -> Path:
    """The hotdog-layout folder: the real d2l data set (full) or the generated mini one (fast)."""
    if profile.fast:
        from helpers.world import ensure_target_dataset

        return ensure_target_dataset(profile.data_dir)
    from helpers.download import download_extract

    return download_extract("hotdog", profile.data_dir)


class Memoized(Dataset):
    """Keeps every item of ``dataset`` after its first read: only for deterministic transforms
    (the test transform), where reading again would give the same tensor."""

    def __init__(self, dataset) -> None:
        self.dataset, self._items = dataset, {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        if i not in self._items:
            self._items[i] = self.dataset[i]
        return self._items[i]

    def __getattr__(self, name: str):  # classes, samples, transform, ... of the wrapped data set
        if name in ("dataset", "_items"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def image_folder(root: str | Path, transform=None, decode_once: bool = False) -> torchvision.datasets.ImageFolder:
    """``ImageFolder`` that reads every image with :func:`load_rgb`. With ``decode_once`` each file
    is decoded once and its RGB image kept in memory (transforms return new images, so the cached
    ones never change): for small data sets only, such as the fast profile's mini world; the full
    profile's fast path is :mod:`helpers.fastpath`."""
    return torchvision.datasets.ImageFolder(str(root), transform=transform,
                                            loader=functools.cache(load_rgb) if decode_once else load_rgb)


class Split(Subset):
    """A ``Subset`` that still answers ``classes``, ``class_to_idx`` ... of its data set, and
    ``targets`` for its own items."""

    @property
    def targets(self) -> list[int]:
        return [self.dataset.targets[i] for i in self.indices]

    def __getattr__(self, name: str):
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _shuffled_per_class(targets: Sequence[int], seed: int) -> list[list[int]]:
    """The indices of each class (classes in sorted order), each list in a seeded random order."""
    g = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    return [[idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
            for _, idx in sorted(by_class.items())]


def stratified_split(targets: Sequence[int], valid_frac: float = 0.2, seed: int = 0
                     ) -> tuple[list[int], list[int]]:
    """``(train_indices, valid_indices)``: in each class a seeded random ``valid_frac`` of the
    items (at least one) is held out for validation, so both parts keep the class balance."""
    if not 0 < valid_frac < 1:
        raise ValueError(f"valid_frac must be in (0, 1), got {valid_frac}")
    train, valid = [], []
    for perm in _shuffled_per_class(targets, seed):
        k = max(1, round(len(perm) * valid_frac)) if len(perm) > 1 else 0
        valid += perm[:k]
        train += perm[k:]
    return sorted(train), sorted(valid)


def per_class_subset(targets: Sequence[int], n: int | None, seed: int = 0) -> list[int]:
    """Indices of at most ``n`` items per class (seeded choice; all items when ``n`` is None)."""
    if n is None:
        return list(range(len(targets)))
    return sorted(i for perm in _shuffled_per_class(targets, seed) for i in perm[:n])


def hotdog_datasets(profile: Profile, train_tf=None, test_tf=None, cache: bool | None = None,
                    valid_frac: float | None = None, split_seed: int = 0):
    """``(train, valid, test)`` data sets with the chapter's transforms (``None`` -> defaults).

    ``valid`` is a stratified, seeded ``valid_frac`` (default: ``profile.valid_frac``; 0.2 of the
    real data's 2,000 training images, half of the mini world's 400, so that one image is half a
    point of validation accuracy) of the training folder (see :func:`stratified_split`) seen through the deterministic test transform: choose epochs, learning
    rates and schedules on it, and report ``test`` once per final model. ``profile.subset`` keeps at
    most that many images per class of each split. ``cache`` (default: on in the fast profile)
    decodes each image once, and keeps the tensors of deterministic (test-transform) data sets."""
    root = hotdog_dir(profile)
    cache = profile.fast if cache is None else cache
    train_tf = train_tf if train_tf is not None else train_transform(profile)
    eval_tf = test_tf if test_tf is not None else test_transform(profile)
    loader = functools.cache(load_rgb) if cache else load_rgb  # one cache for both views of train/
    train_all = torchvision.datasets.ImageFolder(str(root / "train"), transform=train_tf, loader=loader)
    valid_all = torchvision.datasets.ImageFolder(str(root / "train"), transform=eval_tf, loader=loader)
    test = image_folder(root / "test", eval_tf, cache)
    pool = per_class_subset(train_all.targets, profile.subset, split_seed)
    tr, va = stratified_split([train_all.targets[i] for i in pool],
                              profile.valid_frac if valid_frac is None else valid_frac, split_seed)
    train = Split(train_all, [pool[i] for i in tr])
    valid = Split(valid_all, [pool[i] for i in va])
    if profile.subset is not None:
        test = Split(test, per_class_subset(test.targets, profile.subset, split_seed))
    if cache and test_tf is None:
        valid, test = Memoized(valid), Memoized(test)
    return train, valid, test


def loaders(train_ds, eval_ds, profile: Profile, batch_size: int | None = None, seed: int | None = None,
            test_ds=None):
    """Shuffled training loader and ordered evaluation loader(s): ``(train, eval)``, or
    ``(train, eval, test)`` when ``test_ds`` is given.

    The shuffling draws from PyTorch's global generator, like the random crops, so
    ``helpers.seed_everything(s)`` at the start of a run fixes both: two runs started that way
    see the same batches. ``seed`` gives the training loader a generator of its own instead."""
    bs = batch_size or profile.batch_size
    kw = dict(num_workers=profile.num_workers, pin_memory=profile.device.type == "cuda",
              persistent_workers=profile.num_workers > 0)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return (DataLoader(train_ds, bs, shuffle=True, generator=gen, **kw),
            *(DataLoader(ds, bs, shuffle=False, **kw) for ds in (eval_ds, test_ds) if ds is not None))


def hotdog_loaders(profile: Profile, batch_size: int | None = None, seed: int | None = None):
    """``(train_iter, valid_iter, test_iter)`` for the hotdog data of the active profile."""
    train, valid, test = hotdog_datasets(profile)
    return loaders(train, valid, profile, batch_size, seed, test_ds=test)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation (for showing augmented images)."""
    mean = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
    return (x * std + mean).clamp(0, 1)
