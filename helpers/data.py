"""Data: the hotdog chapter's transforms, robust image reading, datasets and loaders per profile."""
from __future__ import annotations

import functools
from pathlib import Path

import torch
import torchvision
from PIL import Image, ImageFile
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from helpers.profile import Profile

ImageFile.LOAD_TRUNCATED_IMAGES = False
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageReadError(OSError):
    """An image file is truncated, corrupt or not an image; the message names it."""


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as RGB: grayscale, palette, CMYK and RGBA (composited on white) are converted;
    a truncated or unreadable file raises :class:`ImageReadError` naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
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


def hotdog_datasets(profile: Profile, train_tf=None, test_tf=None, cache: bool | None = None):
    """``(train, test)`` ImageFolders with the chapter's transforms (``None`` -> defaults).

    ``cache`` (default: on in the fast profile) decodes each image once, and keeps the test
    tensors when the test transform is the default, deterministic one. Same transforms, same
    results, about a third less time per epoch on the mini world."""
    root = hotdog_dir(profile)
    cache = profile.fast if cache is None else cache
    train = image_folder(root / "train", train_tf if train_tf is not None else train_transform(profile), cache)
    test = image_folder(root / "test", test_tf if test_tf is not None else test_transform(profile), cache)
    return train, (Memoized(test) if cache and test_tf is None else test)


def loaders(train_ds, test_ds, profile: Profile, batch_size: int | None = None, seed: int | None = None):
    """Shuffled training loader and ordered test loader.

    The shuffling draws from PyTorch's global generator, like the random crops, so
    ``training.seed_everything(s)`` at the start of a run fixes both: two runs started that way
    see the same batches. ``seed`` gives the training loader a generator of its own instead."""
    bs = batch_size or profile.batch_size
    kw = dict(num_workers=profile.num_workers, pin_memory=profile.device.type == "cuda",
              persistent_workers=profile.num_workers > 0)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    return (DataLoader(train_ds, bs, shuffle=True, generator=gen, **kw),
            DataLoader(test_ds, bs, shuffle=False, **kw))


def hotdog_loaders(profile: Profile, batch_size: int | None = None, seed: int | None = None):
    """``(train_iter, test_iter)`` for the hotdog data of the active profile."""
    return loaders(*hotdog_datasets(profile), profile, batch_size, seed)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation (for showing augmented images)."""
    mean = torch.tensor(IMAGENET_MEAN).view(-1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(-1, 1, 1)
    return (x * std + mean).clamp(0, 1)
