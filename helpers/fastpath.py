"""The full profile at GPU speed: decode once, keep uint8 tensors on the device, augment in batches.

The d2l-style input pipeline (``ImageFolder`` + PIL transforms + ``DataLoader``) decodes every JPEG
again in every epoch and is bound by the CPU. Here each image is decoded **once**, in parallel
(:func:`decode_folder`), resized so its shorter side is ``size`` and centre-cropped to a square, so
the whole set is one ``uint8`` tensor (N, 3, S, S) that lives on the training device. The chapter's
augmentations then run on whole batches there:

* training (:func:`random_resized_crop_batch`): ``RandomResizedCrop`` with torchvision's sampling
  (area fraction uniform in ``scale``, aspect ratio log-uniform in ``ratio``, 10 tries, then the
  central crop as fallback), done by one per-sample affine grid + ``grid_sample``, a random
  horizontal flip folded into the same grid, and ImageNet normalisation;
* testing (:func:`center_crop_batch`): ``Resize(resize_size)`` + ``CenterCrop(image_size)``.

:class:`TensorLoader` yields ``(X, y)`` batches on the device (``channels_last`` on CUDA), so it
plugs into :func:`helpers.training.train` unchanged; :func:`fast_loaders` builds both loaders of a
profile. The same code runs on the CPU (the fast profile) and on CUDA.

One difference from torchvision: the crop is sampled inside the stored square (the central
``S x S`` part of the image), not inside the full, possibly elongated, original image.
"""
from __future__ import annotations

import contextlib
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torchvision
from torch.nn import functional as F
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.v2 import functional as TF

from helpers.data import IMAGENET_MEAN, IMAGENET_STD, ImageReadError, load_rgb
from helpers.profile import Profile

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")
RATIO = (3 / 4, 4 / 3)  # RandomResizedCrop's default aspect-ratio range
# torchvision 0.29 deprecates its decoders in favour of TorchCodec (not installed here); they work.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision",
                        category=DeprecationWarning)


# ----------------------------------------------------------------------------- decoding, once
def read_rgb(path: str | Path) -> torch.Tensor:
    """Decode one image file to a (3, H, W) uint8 RGB tensor. JPEGs (grayscale and CMYK ones
    included) are decoded by ``torchvision.io.decode_jpeg``; other formats go through
    :func:`helpers.data.load_rgb` (RGBA/LA/palette composited on white; torchvision 0.29's
    ``RGB_ALPHA`` mode garbles palette PNGs; 16-bit grayscale is scaled to 8 bits). A broken,
    empty or unreadable file raises :class:`ImageReadError` naming it."""
    try:
        data = torchvision.io.read_file(str(path))
    except RuntimeError as err:  # torchvision's own message does not always name the file
        raise ImageReadError(f"cannot read image {path}: {err}. Replace or delete this file.") from err
    if data.numel() == 0:
        raise ImageReadError(f"cannot read image {path}: the file is empty. Replace or delete this file.")
    if data[:2].tolist() == [0xFF, 0xD8]:  # JPEG
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError:
            pass  # let PIL try, and name the file if it cannot
    return torch.from_numpy(np.asarray(load_rgb(path)).copy()).permute(2, 0, 1).contiguous()


def resize_square(img: torch.Tensor, size: int) -> torch.Tensor:
    """Resize the shorter side to ``size`` (antialiased bilinear), then centre-crop the longer side
    to ``size`` with torchvision's ``CenterCrop`` rounding: (3, size, size) uint8."""
    return TF.center_crop(TF.resize(img, size, antialias=True), [size, size])


def _decode_one(path: str, size: int) -> torch.Tensor:
    return resize_square(read_rgb(path), size)


def image_files(root: str | Path) -> tuple[list[str], list[int], list[str]]:
    """``ImageFolder``'s listing: sorted class folders, sorted files; (paths, labels, classes)."""
    root = Path(root)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    paths, labels = [], []
    for k, c in enumerate(classes):
        for f in sorted((root / c).rglob("*")):
            if f.suffix.lower() in IMG_EXTENSIONS and f.is_file():
                paths.append(str(f))
                labels.append(k)
    if not paths:
        raise FileNotFoundError(f"no images in the class folders of {root}")
    return paths, labels, classes


def decode_folder(root: str | Path, size: int, workers: int | None = None,
                  device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Decode every image of an ``ImageFolder``-layout folder once, in a thread pool of ``workers``
    (default: all cores; the decoders release the GIL), each resized to a ``size`` x ``size``
    square (:func:`resize_square`). Returns ``(images, labels, classes)``: a (N, 3, size, size)
    uint8 tensor and int64 labels, both on ``device``, in ``ImageFolder``'s order."""
    paths, labels, classes = image_files(root)
    workers = workers or os.cpu_count() or 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one image per thread; no nested intra-op parallelism
    try:
        with ThreadPoolExecutor(max(1, workers)) as ex:
            images = torch.stack(list(ex.map(_decode_one, paths, [size] * len(paths), chunksize=16)))
    finally:
        torch.set_num_threads(threads)
    return images.to(device), torch.tensor(labels, device=device), classes


# ----------------------------------------------------------------------------- batched augmentation
def sample_crop_boxes(n: int, height: int, width: int, scale: Sequence[float] = (0.08, 1.0),
                      ratio: Sequence[float] = RATIO, generator: torch.Generator | None = None,
                      tries: int = 10) -> torch.Tensor:
    """``RandomResizedCrop.get_params`` for ``n`` images at once: (n, 4) int64 rows ``(top, left,
    h, w)``. Each row uses the first of ``tries`` draws (area ``U(scale) * H * W``, aspect ratio
    ``exp(U(log ratio))``, sides rounded) that fits, else torchvision's central fallback crop."""
    dev = generator.device if generator is not None else torch.device("cpu")
    area = height * width
    target = area * torch.empty(n, tries, device=dev).uniform_(scale[0], scale[1], generator=generator)
    log_r = torch.empty(n, tries, device=dev).uniform_(math.log(ratio[0]), math.log(ratio[1]),
                                                         generator=generator)
    aspect = torch.exp(log_r)
    w = torch.sqrt(target * aspect).round().long()
    h = torch.sqrt(target / aspect).round().long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = ok.float().argmax(1, keepdim=True)  # index of the first draw that fits
    found = ok.any(1)
    w, h = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]
    # torchvision's fallback: the largest central crop whose aspect ratio is clamped to ``ratio``
    in_ratio = width / height
    if in_ratio < min(ratio):
        fw, fh = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        fw, fh = int(round(height * max(ratio))), height
    else:
        fw, fh = width, height
    w, h = torch.where(found, w, fw), torch.where(found, h, fh)
    u = torch.rand(n, 2, device=dev, generator=generator)  # randint(0, H - h + 1), vectorised
    top = torch.where(found, (u[:, 0] * (height - h + 1)).floor().long(), (height - fh) // 2)
    left = torch.where(found, (u[:, 1] * (width - w + 1)).floor().long(), (width - fw) // 2)
    return torch.stack([top, left, h, w], 1)


def crop_theta(boxes: torch.Tensor, height: int, width: int, flip: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Affine matrices (n, 2, 3) for ``F.affine_grid(align_corners=False)`` that map the output
    onto the pixel box ``(top, left, h, w)`` of an ``height`` x ``width`` input, mirrored where
    ``flip`` is true."""
    top, left, h, w = boxes.to(torch.float32).unbind(1)
    sx, sy = w / width, h / height
    cx, cy = (2 * left + w) / width - 1, (2 * top + h) / height - 1
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    zero = torch.zeros_like(sx)
    return torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)


def _normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8-valued floats -> ``(x / 255 - mean) / std``, as one fused multiply-add per channel."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return torch.addcmul(-m / s, x, 1 / (255 * s))


def random_resized_crop_batch(x: torch.Tensor, out_size: int, scale: Sequence[float] = (0.08, 1.0),
                              ratio: Sequence[float] = RATIO, generator: torch.Generator | None = None,
                              flip_p: float = 0.5, mean: Sequence[float] | None = IMAGENET_MEAN,
                              std: Sequence[float] | None = IMAGENET_STD, boxes: torch.Tensor | None = None,
                              flip: torch.Tensor | None = None) -> torch.Tensor:
    """RandomResizedCrop(out_size, scale, ratio) + RandomHorizontalFlip(flip_p) + Normalize on a
    (N, C, H, W) uint8 (or float 0..255) batch, on its device; returns float32 (N, C, out, out).

    Parameters are drawn with ``generator`` (on its own device; CPU by default, so a seed gives
    the same crops on every device); ``boxes`` / ``flip`` override them (for tests). ``mean=None``
    skips the normalisation (values then stay in 0..255)."""
    n, _, height, width = x.shape
    if boxes is None:
        boxes = sample_crop_boxes(n, height, width, scale, ratio, generator)
    if flip is None:
        dev = generator.device if generator is not None else torch.device("cpu")
        flip = torch.rand(n, device=dev, generator=generator) < flip_p
    theta = crop_theta(boxes, height, width, flip).to(x.device, non_blocking=True)
    grid = F.affine_grid(theta, [n, x.shape[1], out_size, out_size], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out if mean is None or std is None else _normalize(out, mean, std)


def center_crop_batch(x: torch.Tensor, resize_size: int, image_size: int,
                      mean: Sequence[float] | None = IMAGENET_MEAN,
                      std: Sequence[float] | None = IMAGENET_STD) -> torch.Tensor:
    """Test transform on a (N, C, S, S) square batch: ``Resize(resize_size)`` (skipped when
    ``S == resize_size``) + ``CenterCrop(image_size)`` + Normalize; float32 result."""
    x = x.float()
    if x.shape[-1] != resize_size or x.shape[-2] != resize_size:
        x = F.interpolate(x, size=(resize_size, resize_size), mode="bilinear", antialias=True,
                          align_corners=False).clamp_(0, 255)
    off = int(round((resize_size - image_size) / 2.0))
    x = x[..., off:off + image_size, off:off + image_size]
    return x.contiguous() if mean is None or std is None else _normalize(x, mean, std)


# ----------------------------------------------------------------------------- loader
class TensorLoader:
    """Batches of a device-resident uint8 image tensor, augmented on the device.

    ``train=True``: shuffled, :func:`random_resized_crop_batch` with ``scale`` / ``ratio`` and
    flips, a new order and new crops every epoch. Like :func:`helpers.data.loaders`, each epoch
    draws its seed from PyTorch's global generator, so ``helpers.seed_everything(s)`` before a
    run fixes it; ``seed`` gives the loader a generator of its own instead (the same sequence of
    epochs for the same seed);
    ``train=False``: in order, :func:`center_crop_batch`. Yields ``(X, y)`` with ``X`` float32
    normalised (``channels_last`` when asked, default: on CUDA), so it works with
    :func:`helpers.training.train` and ``len()``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, train: bool,
                 image_size: int, resize_size: int | None = None,
                 scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = RATIO,
                 flip_p: float = 0.5, seed: int | None = None, drop_last: bool = False,
                 device: torch.device | str | None = None, channels_last: bool | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a (N, C, H, W) uint8 tensor, got {images.dtype} "
                             f"{tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.device = torch.device(device) if device is not None else images.device
        self.images, self.labels = images.to(self.device), labels.to(self.device)
        self.batch_size, self.train, self.drop_last = batch_size, train, drop_last
        self.image_size, self.resize_size = image_size, resize_size or images.shape[-1]
        self.scale, self.ratio, self.flip_p = tuple(scale), tuple(ratio), flip_p
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed if seed is not None else 0)  # CPU draws

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.labels)
        if self.train and self.seed is None:  # this epoch's seed, from the global generator
            self.generator.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
        order = torch.randperm(n, generator=self.generator) if self.train else torch.arange(n)
        order = order.to(self.device)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            x = self.images[idx]
            if self.train:
                X = random_resized_crop_batch(x, self.image_size, self.scale, self.ratio,
                                              self.generator, self.flip_p)
            else:
                X = center_crop_batch(x, self.resize_size, self.image_size)
            if self.channels_last:
                X = X.contiguous(memory_format=torch.channels_last)
            yield X, self.labels[idx]


def fast_loaders(profile: Profile, root: str | Path | None = None, batch_size: int | None = None,
                 seed: int | None = None, workers: int | None = None) -> tuple[TensorLoader, TensorLoader]:
    """``(train_iter, test_iter)`` like :func:`helpers.data.hotdog_loaders`, on the fast path:
    both splits decoded once at ``profile.resize_size`` onto ``profile.device``."""
    if root is None:
        from helpers.data import hotdog_dir

        root = hotdog_dir(profile)
    root, bs = Path(root), batch_size or profile.batch_size
    tr_x, tr_y, _ = decode_folder(root / "train", profile.resize_size, workers, profile.device)
    te_x, te_y, _ = decode_folder(root / "test", profile.resize_size, workers, profile.device)
    return (TensorLoader(tr_x, tr_y, bs, train=True, image_size=profile.image_size,
                         scale=profile.crop_scale, seed=seed),
            TensorLoader(te_x, te_y, bs, train=False, image_size=profile.image_size,
                         resize_size=profile.resize_size))


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing elsewhere (what ``train(..., amp=True)`` uses)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
