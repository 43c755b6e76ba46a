"""Autograding in a sandbox: every student kernel nbgrader starts runs inside bubblewrap (issue 19).

How it plugs in (jupyter_client's and nbgrader's own extension points, no fork of either):

- ``instructor/cli.py``'s autograde calls :func:`activate` once: it prints the ``isolation: ...`` line,
  or refuses to grade when bubblewrap is missing or cannot create namespaces (unless ``SANDBOX=0``),
  and sets ``COURSE_AUTOGRADE_SANDBOX=bwrap`` for the nbgrader processes it starts.
- ``nbgrader_config.py`` calls :func:`enable` when that variable is set: :class:`SandboxProvisioner`
  becomes jupyter_client's default kernel provisioner in that nbgrader process, and nbgrader's
  ``Execute`` preprocessor is replaced by :class:`LimitedExecute` (a cap on output). Nothing else
  (``make lab``, the Validate button, ``nbgrader validate``) sees the variable: students' own runs are
  unchanged.
- :class:`SandboxProvisioner` (a ``LocalProvisioner``) gives each kernel its own socket folder and
  ``ipc`` transport (the sandbox has no network), wraps the kernel command in ``bwrap`` and sets
  resource limits (address space, file size, open files; a seccomp filter refuses new processes).

Inside the sandbox a kernel sees: the system (``/usr``, a few files of ``/etc``), Python, the course's
``.venv`` and ``helpers`` read-only; the generated data sets read-only (their folder is a private
tmpfs, so writes there vanish); a private ``/tmp`` (its home); its own socket folder; and a writable
bind of the folder nbgrader grades it in (``autograded/<student>/<assignment>/``). Nothing else:
not ``solutions/``, ``notebooks/``, ``submitted/``, the gradebook, other students' folders, the
grader's home or the course's ``.git``. It has its own PID, network (loopback only, nothing
reachable), IPC and UTS namespaces and no capabilities.
"""
from __future__ import annotations

import errno
import json
import os
import platform
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ENV_FLAG = "COURSE_AUTOGRADE_SANDBOX"   # set by the CLI for its nbgrader processes: "bwrap"
ENV_EVENTS = "COURSE_SANDBOX_EVENTS"    # a JSON-lines file where limits hit are recorded
PROVISIONER = "course-sandbox"
HOW_TO_INSTALL = """\
bubblewrap (bwrap) runs each student's kernel without network and without access to the course. Install or enable it:
  Debian/Ubuntu:  sudo apt-get install bubblewrap
  Fedora/RHEL:    sudo dnf install bubblewrap
  Arch:           sudo pacman -S bubblewrap
  Ubuntu 24.04+ (AppArmor restricts user namespaces): allow them for bwrap with a profile
                  printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile bwrap /usr/bin/bwrap flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/bwrap && sudo apparmor_parser -r /etc/apparmor.d/bwrap
  Debian 10/11:   sudo sysctl kernel.unprivileged_userns_clone=1
  containers:     run the grading container with user namespaces allowed (e.g. docker --security-opt seccomp=unconfined), or as a VM
Or grade without a sandbox (student code then runs with your rights): make autograde SANDBOX=0"""


# ---------------------------------------------------------------------------------------------
# choosing the isolation (the CLI)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def probe() -> str | None:
    """``None`` when bubblewrap can start a sandbox here (the namespaces the kernels get), else why not."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {platform.system()})"
    bwrap = bwrap_path()
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    cmd = [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent",
           "--cap-drop", "ALL", "--proc", "/proc", "--", "true"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap could not be run ({err})"
    if r.returncode != 0:
        return f"bwrap cannot create a sandbox here: {(r.stderr or r.stdout).strip()[:300]}"
    return None


def bwrap_version() -> str:
    try:
        out = subprocess.run([bwrap_path() or "bwrap", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    return out.split()[-1] if out.split() else "?"


def wanted(mode: str | None) -> bool:
    """``SANDBOX`` / ``--sandbox`` value -> whether to sandbox (default: yes)."""
    value = (mode if mode is not None else os.environ.get("SANDBOX", "")).strip().lower()
    if value in ("", "1", "on", "yes", "true", "bwrap", "bubblewrap"):
        return True
    if value in ("0", "off", "no", "false", "none"):
        return False
    raise SystemExit(f"SANDBOX={mode!r}: use SANDBOX=1 (bubblewrap, the default) or SANDBOX=0 (no sandbox)")


def activate(mode: str | None = None) -> str | None:
    """Choose the isolation for an autograde run, print it (``isolation: ...``) and export it to the
    nbgrader processes. Returns the isolation (``"bwrap"`` or ``"none"``), or ``None`` when grading
    must be refused (the reason and how to install bubblewrap are printed)."""
    os.environ.pop(ENV_FLAG, None)
    if not wanted(mode):
        print("isolation: none (SANDBOX=0): student code runs with your rights, network included "
              "(README, Security)", flush=True)
        return "none"
    why = probe()
    if why:
        print(f"PROBLEM autograde refused: {why}.\n{HOW_TO_INSTALL}", flush=True)
        return None
    prepare_shared_files()
    os.environ[ENV_FLAG] = "bwrap"
    fd, events = tempfile.mkstemp(prefix="course-sandbox-events-", suffix=".jsonl")
    os.close(fd)
    os.environ[ENV_EVENTS] = events
    print(f"isolation: bubblewrap {bwrap_version()} per student kernel (no network, own PID namespace, "
          f"read-only system/.venv/helpers, writable: its own autograded folder only; limits: "
          f"{SandboxProvisioner.memory_limit.default_value >> 30} GiB address space, no new processes, "
          f"files <= {SandboxProvisioner.file_size_limit.default_value >> 20} MiB, output <= "
          f"{SandboxProvisioner.output_limit.default_value >> 20} MiB printed)", flush=True)
    return "bwrap"


def deactivate() -> None:
    """Undo :func:`activate` in this process (its environment variables and events file): the CLI's
    autograde calls it when the run ends, so that an in-process caller keeps its environment."""
    os.environ.pop(ENV_FLAG, None)
    path = os.environ.pop(ENV_EVENTS, None)
    if path and os.path.isfile(path):
        os.unlink(path)


def limit_events() -> list[str]:
    """The limits kernels hit during this run (one line per student notebook), for PROBLEM lines."""
    path = os.environ.get(ENV_EVENTS)
    if not path or not os.path.isfile(path):
        return []
    lines: list[str] = []
    with open(path, encoding="utf-8") as f:
        raw_lines = f.readlines()
    os.unlink(path)
    os.environ.pop(ENV_EVENTS, None)
    for raw in raw_lines:
        try:
            e = json.loads(raw)
        except json.JSONDecodeError:
            continue
        line = f"{e['student']}/{e['assignment']}/{e['notebook']}.ipynb hit the sandbox's {e['limit']} limit " \
               f"({e['detail']}); the rest of the notebook was graded"
        if line not in lines:
            lines.append(line)
    return lines


def _record(resources: dict, limit: str, detail: str) -> None:
    path = os.environ.get(ENV_EVENTS)
    if not path:
        return
    nbg = (resources or {}).get("nbgrader", {})
    event = dict(student=nbg.get("student", "?"), assignment=nbg.get("assignment", "?"),
                 notebook=nbg.get("notebook", "?"), limit=limit, detail=detail)
    with open(path, "a", encoding="utf-8") as f:  # one short line, appended: atomic enough between jobs
        f.write(json.dumps(event) + "\n")


# ---------------------------------------------------------------------------------------------
# what the sandbox shows read-only


REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """helpers.profile.data_root() without importing helpers (and torch)."""
    return Path(os.environ.get("COURSE_DATA_DIR") or REPO / "data").expanduser().resolve()


def _mpl_cache() -> Path:
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "matplotlib"


def prepare_shared_files() -> None:
    """Generate, outside the sandbox, what kernels would otherwise write into read-only places: the
    course's generated data set and matplotlib's font cache (done once; skipped when present)."""
    world = (REPO / "helpers" / "world.py")
    m = re.search(r"^WORLD_VERSION\s*=\s*(\d+)", world.read_text(encoding="utf-8"), re.M) if world.is_file() else None
    have_data = m is None or (data_root() / f"mini-hotdog-v{m.group(1)}").is_dir()
    have_fonts = any(_mpl_cache().glob("fontlist-*.json"))
    if have_data and have_fonts:
        return
    code = ("import matplotlib.font_manager\n"
            "from helpers.world import ensure_target_dataset\nfrom helpers.profile import data_root\n"
            "ensure_target_dataset(data_root())\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=600)


def _read_only_paths() -> list[tuple[Path, Path]]:
    """(real path, path as the kernel names it) of Python, the virtual environment and helpers."""
    pairs: list[tuple[Path, Path]] = []
    for p in {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix)}:
        pairs.append((p.resolve(), p))
    venv_python = Path(sys.executable)
    pairs.append((venv_python.resolve().parent.parent, venv_python.resolve().parent.parent))
    import importlib.util

    spec = importlib.util.find_spec("helpers")
    if spec and spec.submodule_search_locations:
        helpers = Path(list(spec.submodule_search_locations)[0])
        pairs.append((helpers.resolve(), helpers))
    out, seen = [], set()
    for real, named in pairs:
        if real.is_dir() and (real, named) not in seen and str(real) not in ("/", "/usr"):
            seen.add((real, named))
            out.append((real, named))
    return out


KERNEL_MODULE_DIR = "/opt/course-sandbox"  # inside the sandbox: instructor/sandbox_kernel.py, and nothing else
ENV_KEEP = re.compile(r"^(COURSE_[A-Z_]+|OMP_NUM_THREADS|MKL_NUM_THREADS|ONEDNN_[A-Z_]+|DNNL_[A-Z_]+|MPLBACKEND|"
                      r"LANG|LANGUAGE|LC_[A-Z]+|TZ|PYTHONHASHSEED|PYTHONWARNINGS|PYTHONDONTWRITEBYTECODE)$")


def kernel_env(env: dict[str, str], helpers_parent: Path | None) -> dict[str, str]:
    """The kernel's environment: the course's settings only (no tokens, database URLs, SSH agent...)."""
    out = {k: v for k, v in env.items() if ENV_KEEP.match(k) and k not in (ENV_FLAG, ENV_EVENTS)}
    out["PATH"] = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
    out["HOME"] = "/tmp/home"
    if helpers_parent is not None:
        out["PYTHONPATH"] = str(helpers_parent)
    out["COURSE_DATA_DIR"] = str(data_root())
    out["COURSE_SANDBOXED"] = "1"
    return out


# ---------------------------------------------------------------------------------------------
# seccomp: no new processes (a fork bomb stops at the first fork), no namespaces, mounts, tracing


_SYSCALLS = {  # name: (x86_64, aarch64); None where the architecture has no such call
    "fork": (57, None), "vfork": (58, None), "clone": (56, 220), "clone3": (435, 435),
    "unshare": (272, 97), "setns": (308, 268), "mount": (165, 40), "umount2": (166, 39),
    "pivot_root": (155, 41), "ptrace": (101, 117), "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271), "kexec_load": (246, 104), "kexec_file_load": (320, 294),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282), "keyctl": (250, 219),
    "add_key": (248, 217), "request_key": (249, 218), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "chroot": (161, 51), "swapon": (167, 224),
    "swapoff": (168, 225), "reboot": (169, 142), "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264), "fsopen": (430, 430), "fsmount": (432, 432),
    "move_mount": (429, 429), "open_tree": (428, 428), "fspick": (433, 433), "mount_setattr": (442, 442),
}
_ARCH = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
CLONE_THREAD = 0x00010000


def seccomp_filter(machine: str | None = None) -> bytes | None:
    """A classic-BPF seccomp program (what ``bwrap --seccomp FD`` reads), or ``None`` on an architecture
    it does not know. New processes (fork, vfork, clone without CLONE_THREAD) fail with EAGAIN, as
    when a process limit is reached; threads are allowed (torch, ipykernel). clone3 answers ENOSYS so
    that the C library falls back to clone, whose flags the filter can read."""
    machine = machine or platform.machine()
    if machine not in _ARCH:
        return None
    col, audit_arch = _ARCH[machine]
    ld, jeq, jgt, jset, ret = 0x20, 0x15, 0x25, 0x45, 0x06
    allow, eperm = 0x7FFF0000, 0x00050000 | errno.EPERM
    eagain, enosys = 0x00050000 | errno.EAGAIN, 0x00050000 | errno.ENOSYS
    prog: list[tuple[int, Any, Any, int]] = [(ld, 0, 0, 4), (jeq, 0, "deny_all", audit_arch), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog.append((jgt, "deny_all", 0, 0x3FFFFFFF))  # the x32 ABI: refuse all
    for name, nrs in _SYSCALLS.items():
        nr = nrs[col]
        if nr is None or name == "clone":
            continue
        target = {"fork": "eagain", "vfork": "eagain", "clone3": "enosys"}.get(name, "eperm")
        prog.append((jeq, target, 0, nr))
    prog += [(jeq, "clone", 0, _SYSCALLS["clone"][col]), (ret, 0, 0, allow)]
    labels = {"clone": len(prog)}
    prog += [(ld, 0, 0, 16), (jset, "allow", "eagain", CLONE_THREAD)]
    for name, value in (("allow", allow), ("eagain", eagain), ("eperm", eperm), ("enosys", enosys),
                        ("deny_all", enosys)):
        labels[name] = len(prog)
        prog.append((ret, 0, 0, value))
    out = b""
    for i, (code, jt, jf, k) in enumerate(prog):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        out += struct.pack("=HBBI", code, jt, jf, k)
    return out


# ---------------------------------------------------------------------------------------------
# the kernel provisioner


from jupyter_client.provisioning import LocalProvisioner  # noqa: E402
from traitlets import Integer  # noqa: E402


class SandboxProvisioner(LocalProvisioner):
    """Starts the kernel inside bubblewrap (see the module's docstring for what it can see)."""

    memory_limit = Integer(6 << 30, config=True, help="address space of a kernel, bytes (RLIMIT_AS)")
    file_size_limit = Integer(256 << 20, config=True, help="largest file a kernel may write, bytes (RLIMIT_FSIZE)")
    open_files_limit = Integer(1024, config=True, help="open files per kernel (RLIMIT_NOFILE)")
    tmp_size = Integer(512 << 20, config=True, help="size of the kernel's private /tmp (tmpfs), bytes")
    output_limit = Integer(8 << 20, config=True, help="characters a kernel may print (stdout and stderr together)")

    _sock_dir: str | None = None
    _seccomp_fd: int | None = None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        bwrap = bwrap_path()
        if bwrap is None:
            raise RuntimeError("the autograde sandbox needs bubblewrap (bwrap): " + HOW_TO_INSTALL)
        cwd = Path(kwargs.get("cwd") or os.getcwd()).resolve()
        self._sock_dir = tempfile.mkdtemp(prefix="course-kernel-")  # mode 0700, this kernel's only
        km.transport = "ipc"
        km.cache_ports = False
        km.ip = os.path.join(self._sock_dir, "ipc")
        km.connection_file = os.path.join(self._sock_dir, "kernel.json")
        self.kernel_spec.interrupt_mode = "message"  # signals do not cross bwrap; the control channel does
        kwargs = await super().pre_launch(**kwargs)
        paths = _read_only_paths()
        helpers = next((named for real, named in paths if named.name == "helpers"), None)
        env = kernel_env(kwargs.get("env") or dict(os.environ), helpers.parent if helpers else None)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), KERNEL_MODULE_DIR) if p)
        env["COURSE_SANDBOX_OUTPUT"] = str(self.output_limit)
        kwargs["env"] = env
        cmd = list(kwargs["cmd"])
        if any("ipykernel" in part for part in cmd):  # ipykernel's stdout/stderr with a cap
            cmd.append("--IPKernelApp.outstream_class=course_sandbox_kernel.CappedOutStream")
        kwargs["cmd"] = self._bwrap_cmd(bwrap, cmd, cwd, paths, env)
        kwargs["cwd"] = str(cwd)
        return kwargs

    def _bwrap_cmd(self, bwrap: str, cmd: list[str], cwd: Path, paths: list[tuple[Path, Path]],
                   env: dict[str, str]) -> list[str]:
        args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
                "--setenv", "JPY_PARENT_PID", "1",  # not the outer pid jupyter_client sets: the kernel would exit
                "--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            p = Path("/") / top
            if p.is_symlink():
                args += ["--symlink", os.readlink(p), str(p)]
            elif p.is_dir():
                args += ["--ro-bind", str(p), str(p)]
        for f in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group",
                  "nsswitch.conf", "hosts", "host.conf", "alternatives", "ssl", "ca-certificates",
                  "fonts", "mime.types", "os-release"):
            args += ["--ro-bind-try", f"/etc/{f}", f"/etc/{f}"]
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.tmp_size), "--tmpfs", "/tmp",
                 "--dir", "/tmp/home", "--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
        binds: list[str] = []
        for real, named in paths:
            binds += ["--ro-bind", str(real), str(real)]
            if named != real:
                binds += ["--ro-bind", str(real), str(named)]
        binds += ["--ro-bind", str(Path(__file__).with_name("sandbox_kernel.py")),
                  f"{KERNEL_MODULE_DIR}/course_sandbox_kernel.py"]
        fonts = sorted(_mpl_cache().glob("fontlist-*.json"))
        if fonts:  # matplotlib's font cache, so that each kernel does not rebuild (and announce) it
            binds += ["--ro-bind", str(fonts[-1]), f"/tmp/home/.cache/matplotlib/{fonts[-1].name}"]
        data = data_root()
        if data.is_dir():  # generated data sets, read-only; the rest of the folder is a private tmpfs
            binds += ["--tmpfs", str(data)]
            for d in sorted(data.iterdir()):
                if d.is_dir() and not d.name.startswith("."):
                    binds += ["--ro-bind", str(d), str(d)]
        binds += ["--bind", self._sock_dir, self._sock_dir, "--bind", str(cwd), str(cwd), "--chdir", str(cwd)]
        # Mount points deeper under /tmp (a course in /tmp/...) would sit in the kernel's writable /tmp:
        # their top folder gets a tmpfs of its own, read-only once the mounts are made, like the root.
        dests, i = [], 0
        while i < len(binds):  # (--ro-bind|--bind SRC DEST) or (--tmpfs|--chdir DEST)
            width = 3 if binds[i] in ("--ro-bind", "--bind") else 2
            dests.append(Path(binds[i + width - 1]))
            i += width
        tops = sorted({f"/tmp/{d.parts[2]}" for d in dests if len(d.parts) > 3 and d.parts[1] == "tmp"
                       and d.parts[2] != "home"})
        args += [a for t in tops for a in ("--tmpfs", t)] + binds
        args += [a for t in tops for a in ("--remount-ro", t)] + ["--remount-ro", "/"]
        program = seccomp_filter()
        if program is not None:
            fd = os.memfd_create("course-seccomp", 0)
            os.write(fd, program)
            os.lseek(fd, 0, os.SEEK_SET)
            self._seccomp_fd = fd
            args += ["--seccomp", str(fd)]
        return args + ["--", *cmd]

    async def launch_kernel(self, cmd: list[str], **kwargs: Any):
        limits = [(resource.RLIMIT_AS, self.memory_limit), (resource.RLIMIT_FSIZE, self.file_size_limit),
                  (resource.RLIMIT_NOFILE, self.open_files_limit), (resource.RLIMIT_CORE, 0)]

        def set_limits() -> None:  # in the child, before exec: bwrap and the kernel inherit them
            for which, value in limits:
                resource.setrlimit(which, (value, value))

        if self._seccomp_fd is not None:
            kwargs["pass_fds"] = (self._seccomp_fd,)
        kwargs["preexec_fn"] = set_limits
        # the kernel's own stdout/stderr (not the notebook's): a file capped by RLIMIT_FSIZE, not nbgrader's log
        log = open(os.path.join(self._sock_dir or tempfile.gettempdir(), "kernel.log"), "wb")  # noqa: SIM115
        kwargs["stdout"] = kwargs["stderr"] = log
        try:
            return await super().launch_kernel(cmd, **kwargs)
        finally:
            log.close()
            if self._seccomp_fd is not None:
                os.close(self._seccomp_fd)
                self._seccomp_fd = None

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        if not restart and self._sock_dir:
            try:
                with open(os.path.join(self._sock_dir, "kernel.log"), "rb") as f:
                    f.seek(max(0, os.fstat(f.fileno()).st_size - 1500))
                    tail = f.read().decode("utf-8", "replace").strip()
                if tail:
                    self.log.warning("sandboxed kernel's own output (last lines):\n%s", tail)
            except OSError:
                pass
            shutil.rmtree(self._sock_dir, ignore_errors=True)
            self._sock_dir = None


# ---------------------------------------------------------------------------------------------
# nbgrader's side: a cap on output, the limits hit reported


from nbgrader.preprocessors import Execute  # noqa: E402


class LimitedExecute(Execute):
    """nbgrader's Execute with a cap on the output a notebook may send (a kernel printing 1 GB would
    otherwise fill the grader's memory and the autograded notebook): past ``output_limit`` bytes the
    outputs are dropped, the cell is interrupted and the limit is reported. A single message larger
    than ``max_message_size`` is refused by ZeroMQ itself (the connection is dropped). Errors that
    show a resource limit (MemoryError, a refused fork, a file too large) are reported too."""

    output_limit = Integer(16 << 20, config=True, help="bytes of output per notebook")
    max_message_size = Integer(64 << 20, config=True, help="largest message accepted from a kernel, bytes")

    def preprocess(self, nb, resources=None, km=None):
        self._out_bytes = 0
        self._over = False
        self._noted = False
        self._resources = resources or {}
        self._tasks = []
        return super().preprocess(nb, resources, km)

    async def async_start_new_kernel_client(self):
        import zmq

        if self.km is not None and self.max_message_size > 0:
            self.km.context.setsockopt(zmq.MAXMSGSIZE, self.max_message_size)  # sockets made from now on
        return await super().async_start_new_kernel_client()

    @staticmethod
    def _size(content: dict) -> int:
        n = len(content.get("text", "") or "")
        for v in (content.get("data") or {}).values():
            n += len(v) if isinstance(v, str) else len(json.dumps(v))
        n += sum(len(line) for line in content.get("traceback") or [])
        return n

    def process_message(self, msg, cell, cell_index):
        kind = msg["msg_type"]
        if kind == "stream" and not self._noted and "[autograde sandbox] output limit reached" in msg["content"].get("text", ""):
            self._noted = True
            _record(self._resources, "output",
                    f"more than {SandboxProvisioner.output_limit.default_value >> 20} MiB printed")
        if kind in ("stream", "display_data", "execute_result", "error", "update_display_data"):
            self._out_bytes += self._size(msg["content"])
            if self._out_bytes > self.output_limit:
                if not self._over:
                    self._over = True
                    note = (f"[autograde sandbox] this notebook's output passed {self.output_limit >> 20} MiB: "
                            "the rest of it is dropped and the cell was interrupted\n")
                    from nbformat.v4 import new_output

                    cell.outputs.append(new_output("stream", name="stderr", text=note))
                    _record(self._resources, "output", f"more than {self.output_limit >> 20} MiB printed")
                    import asyncio

                    from jupyter_core.utils import ensure_async

                    self._tasks.append(asyncio.ensure_future(ensure_async(self.km.interrupt_kernel())))
                return None
        return super().process_message(msg, cell, cell_index)

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        for out in kwargs["cell"].get("outputs", []):
            if out.get("output_type") != "error":
                continue
            ename, text = out.get("ename", ""), f"{out.get('evalue', '')} " + " ".join(out.get("traceback", []))
            if ename == "MemoryError" or "can't allocate memory" in text or "Cannot allocate memory" in text:
                _record(self._resources, "memory", f"{ename} in cell {kwargs.get('cell_index')}")
            elif ename == "BlockingIOError" and re.search(r"fork|spawn|Popen|clone", text):
                _record(self._resources, "process", "a new process was refused")
            elif "File too large" in text:
                _record(self._resources, "file size", f"a file over {SandboxProvisioner.file_size_limit.default_value >> 20} MiB")


# ---------------------------------------------------------------------------------------------
# nbgrader_config.py's hook


def enable(c) -> None:
    """Make every kernel this nbgrader process starts a sandboxed one (called by nbgrader_config.py
    when ``COURSE_AUTOGRADE_SANDBOX=bwrap``)."""
    from importlib.metadata import EntryPoint

    from jupyter_client.provisioning import KernelProvisionerFactory
    from nbgrader.converters.autograde import Autograde

    # jupyter_client finds provisioners by entry point; register ours for this process without
    # installing a package (the factory's registry is a class attribute, read before entry points)
    KernelProvisionerFactory.provisioners[PROVISIONER] = EntryPoint(
        name=PROVISIONER, value="instructor.sandbox:SandboxProvisioner", group=KernelProvisionerFactory.GROUP_NAME)
    os.environ[KernelProvisionerFactory.default_provisioner_name_env] = PROVISIONER
    default = Autograde.class_traits()["autograde_preprocessors"].default()
    c.Autograde.autograde_preprocessors = [LimitedExecute if p is Execute else p for p in default]
