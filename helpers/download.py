"""Remote files the full profile needs, d2l's ``DATA_HUB`` style: name -> URL, hash, expected layout.

Fetching and hash verification are pooch's (a half-written or unverified file never stays in the
cache); extraction is ours, because it must *refuse* archive members that would land outside the
cache directory, and it must be atomic (extract to a temporary folder, then rename).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pooch
import torch

from helpers.profile import data_root

D2L_DATA_URL = "http://d2l-data.s3-accelerate.amazonaws.com/"


class DownloadError(RuntimeError):
    """A remote file is missing and could not be fetched; the message says what to do by hand."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the extraction directory."""


@dataclass(frozen=True)
class RemoteFile:
    """One entry of the registry: where a file lives, its SHA-1, and what it must unpack to."""

    name: str
    url: str
    sha1: str
    folder: str  # the top-level folder inside the archive
    layout: tuple[str, ...] = field(default_factory=tuple)  # sub-folders that must exist

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


DATA_HUB: dict[str, RemoteFile] = {
    "hotdog": RemoteFile(
        "hotdog", D2L_DATA_URL + "hotdog.zip", "fba480ffa8aa7e0febbb511d181409f899b9baa5",
        folder="hotdog",
        layout=("train/hotdog", "train/not-hotdog", "test/hotdog", "test/not-hotdog"),
    ),
}


def _entry(name: str | RemoteFile) -> RemoteFile:
    if isinstance(name, RemoteFile):
        return name
    if name not in DATA_HUB:
        raise KeyError(f"{name!r} is not in DATA_HUB; known: {sorted(DATA_HUB)}")
    return DATA_HUB[name]


def _manual_instructions(entry: RemoteFile, cache: Path, reason: object) -> str:
    return (
        f"Could not fetch {entry.filename} ({reason}).\n"
        f"Download it by hand from {entry.url}\n"
        f"check its SHA-1 is {entry.sha1} (`sha1sum {entry.filename}`),\n"
        f"and put it at {cache / entry.filename} (or set COURSE_DATA_DIR to the folder that holds it)."
    )


def download(name: str | RemoteFile, cache_dir: str | Path | None = None) -> Path:
    """Download one registry file into the cache (once) and return its verified path."""
    entry = _entry(name)
    cache = Path(cache_dir) if cache_dir is not None else data_root()
    cache.mkdir(parents=True, exist_ok=True)
    try:
        path = pooch.retrieve(entry.url, known_hash=f"sha1:{entry.sha1}", fname=entry.filename,
                              path=cache, progressbar=False)
    except ValueError as err:  # pooch: hash mismatch (the bad file is already deleted)
        raise DownloadError(
            f"{entry.filename} from {entry.url} does not have the expected SHA-1 {entry.sha1}; "
            f"nothing was kept. {err}\n" + _manual_instructions(entry, cache, "wrong hash")
        ) from err
    except Exception as err:  # network errors, truncated transfers, HTTP errors
        raise DownloadError(_manual_instructions(entry, cache, err)) from err
    return Path(path)


def safe_extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a zip into ``dest``, refusing members with absolute paths, ``..`` or links."""
    dest = Path(dest).resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
            if info.filename.startswith(("/", "\\")) or is_link or not target.is_relative_to(dest):
                raise UnsafeArchiveError(
                    f"{archive}: member {info.filename!r} would be written outside {dest}; "
                    "the archive was refused and nothing was extracted. Re-download it from its source."
                )
        zf.extractall(dest)


def download_extract(name: str | RemoteFile, cache_dir: str | Path | None = None) -> Path:
    """Download (once), verify, extract (once, atomically) and return the data folder."""
    entry = _entry(name)
    cache = Path(cache_dir) if cache_dir is not None else data_root()
    folder = cache / entry.folder
    if folder.is_dir() and all((folder / sub).is_dir() for sub in entry.layout):
        return folder
    archive = download(entry, cache)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=cache))
    try:
        safe_extract(archive, tmp)
        extracted = tmp / entry.folder
        missing = [sub for sub in entry.layout if not (extracted / sub).is_dir()]
        if missing:
            raise DownloadError(f"{archive} does not contain {entry.folder}/{missing[0]}; "
                                f"delete it and download it again from {entry.url}.")
        if folder.exists():  # an incomplete earlier folder: replace it
            shutil.rmtree(folder)
        os.replace(extracted, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_state_dict(url: str, model_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
    """torchvision's weight loading (``$TORCH_HOME/hub/checkpoints``, SHA-256 prefix in the file
    name checked), with an error that says what to download by hand when it cannot."""
    model_dir = Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / "checkpoints"
    filename = url.rsplit("/", 1)[-1]
    try:
        return torch.hub.load_state_dict_from_url(url, model_dir=str(model_dir), map_location="cpu",
                                                  check_hash=True, progress=True)
    except Exception as err:
        prefix = filename.rsplit("-", 1)[-1].split(".")[0]
        raise DownloadError(
            f"Could not load weights {filename} ({err}).\nDownload {url} by hand, check that its "
            f"SHA-256 starts with {prefix} (`sha256sum {filename}`), and put it at "
            f"{model_dir / filename} (the folder is $TORCH_HOME/hub/checkpoints)."
        ) from err
