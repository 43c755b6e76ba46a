"""Real download code, exercised against a server on 127.0.0.1 (no internet needed)."""
from __future__ import annotations

import hashlib
import io
import socket
import zipfile
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from helpers import data, download, models
from helpers.download import DownloadError, RemoteFile, UnsafeArchiveError
from helpers.profile import get_profile
from tests.localserver import LocalServer

LAYOUT = ("train/hotdog", "train/not-hotdog", "test/hotdog", "test/not-hotdog")


def hotdog_zip(extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, sub in enumerate(LAYOUT):
            for i in range(2):
                img = io.BytesIO()
                Image.new("RGB", (20 + i, 16), (40 * k, 100, 30 * i)).save(img, "JPEG")
                zf.writestr(f"hotdog/{sub}/{i}.jpg", img.getvalue())
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return buf.getvalue()


def entry(server: LocalServer, name: str, body: bytes, sha1: str | None = None) -> RemoteFile:
    server.files[name] = body
    return RemoteFile("hotdog", server.url + name, sha1 or hashlib.sha1(body).hexdigest(), "hotdog", LAYOUT)


def leftovers(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))


def test_registry_keeps_the_real_source():
    hub = download.DATA_HUB["hotdog"]
    assert hub.url == "http://d2l-data.s3-accelerate.amazonaws.com/hotdog.zip"
    assert hub.sha1 == "fba480ffa8aa7e0febbb511d181409f899b9baa5"


def test_correct_hash_extracts_once_then_serves_from_cache(tmp_path):
    with LocalServer() as server:
        e = entry(server, "hotdog.zip", hotdog_zip())
        folder = download.download_extract(e, tmp_path)
        assert all((folder / sub).is_dir() for sub in LAYOUT)
        assert len(list((folder / "train/hotdog").iterdir())) == 2
        assert server.requests == ["hotdog.zip"]
        assert download.download_extract(e, tmp_path) == folder
        # even with the folder gone, the verified archive is reused: no second request
        import shutil
        shutil.rmtree(folder)
        assert download.download_extract(e, tmp_path) == folder
        assert server.requests == ["hotdog.zip"]
    assert not [p for p in leftovers(tmp_path) if p.startswith(".")]


def test_wrong_hash_is_a_clear_error_and_leaves_nothing(tmp_path):
    with LocalServer() as server:
        e = entry(server, "hotdog.zip", hotdog_zip(), sha1="0" * 40)
        with pytest.raises(DownloadError, match="SHA-1") as err:
            download.download_extract(e, tmp_path)
    assert str(tmp_path / "hotdog.zip") in str(err.value)  # says where to put it by hand
    assert leftovers(tmp_path) == []


def test_truncated_transfer_leaves_nothing(tmp_path):
    with LocalServer() as server:
        body = hotdog_zip()
        e = entry(server, "hotdog.zip", body)
        server.truncate.add("hotdog.zip")
        with pytest.raises(DownloadError):
            download.download_extract(e, tmp_path)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("evil", ["../evil.txt", "hotdog/../../evil.txt", "/tmp/evil-course-test.txt"])
def test_archive_members_outside_the_cache_are_refused(tmp_path, evil):
    cache = tmp_path / "cache"
    with LocalServer() as server:
        e = entry(server, "hotdog.zip", hotdog_zip({evil: b"pwned"}))
        with pytest.raises(UnsafeArchiveError, match="outside"):
            download.download_extract(e, cache)
    assert not (tmp_path / "evil.txt").exists() and not Path("/tmp/evil-course-test.txt").exists()
    assert not (cache / "hotdog").exists()
    assert [p for p in leftovers(cache) if p != "hotdog.zip"] == []


def test_archive_without_the_expected_layout_is_an_error(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hotdog/train/hotdog/0.jpg", b"x")
    with LocalServer() as server:
        e = entry(server, "hotdog.zip", buf.getvalue())
        with pytest.raises(DownloadError, match="test/hotdog|train/not-hotdog"):
            download.download_extract(e, tmp_path)
    assert not (tmp_path / "hotdog").exists()


def closed_port_url(name: str) -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/{name}"


def test_full_profile_never_falls_back_silently(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    real = download.DATA_HUB["hotdog"]
    monkeypatch.setitem(download.DATA_HUB, "hotdog",
                        RemoteFile("hotdog", closed_port_url("hotdog.zip"), real.sha1, "hotdog", real.layout))
    with pytest.raises(DownloadError) as err:
        data.hotdog_dir(get_profile("full"))
    msg = str(err.value)
    assert real.sha1 in msg and str(tmp_path / "hotdog.zip") in msg and "by hand" in msg


def test_full_profile_uses_a_verified_manual_download(tmp_path, monkeypatch):
    body = hotdog_zip()
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setitem(download.DATA_HUB, "hotdog",
                        RemoteFile("hotdog", closed_port_url("hotdog.zip"), hashlib.sha1(body).hexdigest(),
                                   "hotdog", LAYOUT))
    (tmp_path / "hotdog.zip").write_bytes(body)  # put there by hand, as the error message says
    train, valid, test = data.hotdog_datasets(get_profile("full"))
    assert train.classes == ["hotdog", "not-hotdog"] and len(train) + len(valid) == 4 and len(test) == 4
    assert train[0][0].shape == (3, 224, 224)


def resnet18_file(tmp_path: Path) -> tuple[str, bytes, dict]:
    torch.manual_seed(0)
    state = torchvision.models.resnet18(weights=None).state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    body = buf.getvalue()
    return f"resnet18-{hashlib.sha256(body).hexdigest()[:8]}.pth", body, state


def test_full_profile_weights_load_through_torchvision_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    name, body, state = resnet18_file(tmp_path)
    with LocalServer() as server:
        server.files[name] = body
        net = models.source_model(get_profile("full"), url=server.url + name)
        again = models.source_model(get_profile("full"), url=server.url + name)
        assert server.requests == [name]  # second time from $TORCH_HOME/hub/checkpoints
    assert (tmp_path / "torch/hub/checkpoints" / name).exists()
    for k, v in state.items():
        assert torch.equal(net.state_dict()[k], v) and torch.equal(again.state_dict()[k], v)
    assert net.fc.out_features == 1000


def test_weights_with_a_wrong_hash_are_refused_and_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _, body, _ = resnet18_file(tmp_path)
    with LocalServer() as server:
        server.files["resnet18-deadbeef.pth"] = body
        with pytest.raises(DownloadError, match="deadbeef"):
            models.source_model(get_profile("full"), url=server.url + "resnet18-deadbeef.pth")
    ckpt = tmp_path / "torch/hub/checkpoints"
    assert not ckpt.exists() or list(ckpt.iterdir()) == []


def test_missing_weights_say_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(DownloadError) as err:
        models.source_model(get_profile("full"), url=closed_port_url("resnet18-f37072fd.pth"))
    msg = str(err.value)
    assert "f37072fd" in msg and str(tmp_path / "torch/hub/checkpoints/resnet18-f37072fd.pth") in msg


def test_real_weights_url_is_torchvisions():
    assert torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.endswith("resnet18-f37072fd.pth")
