"""`make lab` starts JupyterLab for root and non-root users alike and says where to go without a
browser: started here the way a student starts it (the Makefile's own recipe, on 127.0.0.1 and a
free port, bounded in time), then asked over HTTP for the chapters and the course kernel, stopped."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.labserver import stop_session

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str, method: str = "GET", body: dict | None = None) -> object:
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"},
                                 data=json.dumps(body).encode() if body is not None else None)
    with urllib.request.urlopen(req, timeout=20) as r:
        text = r.read().decode()
    return json.loads(text) if text else None


@pytest.mark.skipif(shutil.which("make") is None or os.name != "posix", reason="needs make (POSIX)")
def test_make_lab_serves_the_chapters_and_the_course_kernel(tmp_path):
    port = free_port()
    # no display, no BROWSER: a headless machine; --no-browser too, so a desktop never gets a tab
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    env.update(JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_CONFIG_DIR=str(tmp_path / "config"))
    headless = subprocess.run([sys.executable, "-c", "import webbrowser; webbrowser.get()"], env=env,
                              capture_output=True).returncode != 0
    log = tmp_path / "lab.log"
    # -o: the stamp counts as up to date (a test never reinstalls the environment)
    cmd = ["make", "--no-print-directory", "-o", f"{VENV}/.installed", f"VENV={VENV}", "lab",
           f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        url, deadline = None, time.monotonic() + 90
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            m = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", log.read_text())
            url = m and m.group(0)
        text = log.read_text()
        assert url, f"make lab printed no URL within 90 s (exit {proc.poll()}):\n{text[-3000:]}"
        assert "Running as root is not recommended" not in text
        if headless:
            assert "No web browser found here" in text
        token, base = url.split("token=")[1], f"http://127.0.0.1:{port}"
        listing = get(f"{base}/api/contents/", token)
        chapters = {c["name"] for c in listing["content"] if c["type"] == "directory"}
        assert {"ch1_basics", "ch2_hotdog", "ch3_unfreezing", "ch4_compression", "ch5_recovery"} <= chapters
        nb = get(f"{base}/api/contents/ch1_basics/ch1_basics.ipynb?content=0", token)
        assert nb["type"] == "notebook"
        specs = get(f"{base}/api/kernelspecs", token)
        course = specs["kernelspecs"]["python3"]["spec"]
        assert course["display_name"] == "Python 3 (course)"
        venv_of_kernel = Path(course["argv"][0]).parent.parent  # .../.venv/bin/python -> .../.venv
        assert os.path.realpath(venv_of_kernel) == os.path.realpath(VENV)  # the course's environment
    finally:
        stop_session(proc)
