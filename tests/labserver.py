"""JupyterLab started the way a person starts it (``make lab`` / ``make formgrader`` in a course
folder, on 127.0.0.1, a free port, Jupyter's token), and a headless Chromium driven by Selenium
(Debian's ``chromium`` and ``chromium-driver``, installed by ``make system-packages``): what the browser
tests need, bounded in time, stopped at the end."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def lab(course: Path, target: str, tmp: Path, timeout: float = 120) -> Iterator[tuple[str, str]]:
    """``make <target>`` (``lab``, ``formgrader``) in ``course``, a copy of the repository that has its
    Makefile. Yields the server's base URL and token; stops make and Jupyter (one session) at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER")}
    for name in ("runtime", "config", "settings", "workspaces"):
        (tmp / f"jupyter-{name}").mkdir(parents=True, exist_ok=True)
    env.update(JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"), JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "jupyter-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "jupyter-workspaces"))
    # no "get notified about Jupyter news?" toast over the screenshots (and no request to the internet)
    news = tmp / "jupyter-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = tmp / f"{target}.log"
    # -o: the environment's stamp counts as up to date (a test never reinstalls the environment)
    cmd = ["make", "--no-print-directory", "-o", f"{VENV}/.installed", f"VENV={VENV}", target,
           f"LAB_ARGS=--no-browser --ip=127.0.0.1 --port={port} --ServerApp.port_retries=0"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        url, deadline = None, time.monotonic() + timeout
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            m = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", log.read_text())
            url = m and m.group(0)
        assert url, f"make {target} printed no URL within {timeout} s (exit {proc.poll()}):\n{log.read_text()[-3000:]}"
        yield f"http://127.0.0.1:{port}", url.split("token=")[1]
    finally:
        stop_session(proc)


def stop_session(proc: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session=True`` and everything in its session (make and
    its jupyter): SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or ``None``."""
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return (f"{' and '.join(missing)} not installed: `make system-packages` installs Debian's chromium and "
                "chromium-driver (as root; `make test` does it)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: `make setup` installs requirements.txt"
    return None


@contextmanager
def chromium(tmp: Path, width: int = 1400, height: int = 1000) -> Iterator["object"]:
    """A headless Chromium (the system's, with the system's chromedriver: no download) under Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", f"--user-data-dir={tmp / 'chromium-profile'}",
                "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    service = Service(shutil.which("chromedriver"), log_output=str(tmp / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(what: str, check: Callable[[], T], timeout: float = 60, every: float = 0.25) -> T:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet); fail after ``timeout``."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # noqa: BLE001 - the page is still changing
            last = err
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def screenshot_dir() -> Path:
    """``build/screenshots/`` in the repository (git-ignored), or ``$COURSE_SCREENSHOTS``."""
    folder = Path(os.environ.get("COURSE_SCREENSHOTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
