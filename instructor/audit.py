"""Suspicious code in students' cells, for an instructor to review by hand.

Autograding runs student code with the grader's rights, in the same kernel as the hidden tests. A
submission can make a wrong answer pass by patching what the tests rely on (``torch.allclose =
lambda *a, **k: True``), by hooking the kernel (``get_ipython().set_custom_exc``, ``sys.settrace``),
or reach outside its folder (files, network, shell). This module reads the code cells a student can
edit (every code cell nbgrader does not lock: locked cells are restored from the gradebook before
grading) with Python's ``ast`` and lists what it finds; it never runs student code, and it flags,
it does not grade: an instructor looks at the flagged submissions.

    findings = audit_notebook(Path("submitted/alice/ch3_unfreezing/ch3_unfreezing.ipynb"))
    # [Finding(cell='train_impl', line=3, what='assigns to torch.allclose')]
"""
from __future__ import annotations

import ast
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# modules the tests and the grader rely on: no student cell has a reason to assign to them
PROTECTED = {"torch", "torchvision", "numpy", "math", "builtins", "helpers", "sys", "os", "nbgrader",
             "IPython", "unittest", "random", "time", "operator", "functools", "inspect", "np"}
NETWORK = {"socket", "urllib", "urllib3", "requests", "http", "httpx", "ftplib", "smtplib", "aiohttp",
           "paramiko", "telnetlib", "xmlrpc", "websocket", "websockets"}
DANGEROUS_MODULES = {"ctypes": "imports ctypes (raw memory access)", "subprocess": "runs programs (subprocess)",
                     "multiprocessing": "starts processes (multiprocessing)", "gc": "inspects live objects (gc)",
                     "importlib": "reloads or imports modules dynamically (importlib)", "pty": "opens a shell (pty)"}
HOOK_CALLS = {  # dotted call (or its last parts) -> why
    "sys.settrace": "installs a trace function (sys.settrace)",
    "sys.setprofile": "installs a profile function (sys.setprofile)",
    "threading.settrace": "installs a trace function (threading.settrace)",
    "sys.exit": "exits the kernel (sys.exit)",
    "os._exit": "kills the kernel (os._exit)",
    "os.system": "runs a shell command (os.system)",
    "os.popen": "runs a shell command (os.popen)",
    "os.kill": "sends a signal (os.kill)",
    "os.remove": "deletes a file (os.remove)", "os.unlink": "deletes a file (os.unlink)",
    "os.chdir": "changes the working folder (os.chdir)",
    "shutil.rmtree": "deletes a folder (shutil.rmtree)",
    "torch.hub.load": "downloads code or weights (torch.hub.load)",
    "signal.signal": "installs a signal handler",
}
IPYTHON_HOOKS = {"set_custom_exc": "replaces the kernel's exception handler (set_custom_exc)",
                 "register": "registers a kernel event callback (events.register)",
                 "register_magic_function": "registers a magic", "run_line_magic": "runs a magic",
                 "system": "runs a shell command (get_ipython().system)", "ex": "executes code (get_ipython().ex)",
                 "push": "pushes variables into the kernel namespace"}
FILE_FUNCS = {"open", "Path", "PurePath", "io.open", "os.open", "pathlib.Path", "shutil.copy", "shutil.copyfile",
              "shutil.move", "os.listdir", "os.scandir", "os.walk", "glob.glob", "torch.load", "torch.save"}


@dataclass(frozen=True)
class Finding:
    cell: str  # the cell's grade_id, or "cell N" (1-based) for cells without one
    line: int
    what: str


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for Name/Attribute chains, ``get_ipython()`` for a call to it, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "get_ipython":
        parts.append("get_ipython()")
    else:
        return None
    return ".".join(reversed(parts))


def _outside(path: str) -> bool:
    """A literal path that leaves the notebook's folder."""
    return path.startswith(("/", "~", "\\")) or bool(re.match(r"^[A-Za-z]:", path)) or ".." in Path(path).parts


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self.aliases: dict[str, str] = {"get_ipython()": "get_ipython()"}  # local name -> module
        self.ipython_names: set[str] = set()  # names bound to get_ipython()

    def flag(self, node: ast.AST, what: str) -> None:
        self.found.append((getattr(node, "lineno", 0), what))

    def _module_of(self, dotted: str | None) -> str | None:
        """The protected module (or get_ipython()) a dotted name starts from, if any."""
        if not dotted:
            return None
        head = dotted.split(".")[0]
        if head in self.ipython_names or head == "get_ipython()":
            return "get_ipython()"
        mod = self.aliases.get(head, head if head in PROTECTED else None)
        return mod if mod and (mod.split(".")[0] in PROTECTED or mod == "get_ipython()") else None

    # -- imports --------------------------------------------------------------------------------
    def _imported(self, node: ast.AST, module: str, local: str) -> None:
        top = module.split(".")[0]
        self.aliases[local] = module
        if top in NETWORK:
            self.flag(node, f"network access (imports {module})")
        elif top in DANGEROUS_MODULES:
            self.flag(node, DANGEROUS_MODULES[top])
        elif top == "builtins":
            self.flag(node, "imports builtins")

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self._imported(node, a.name, a.asname or a.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        for a in node.names:
            self._imported(node, f"{mod}.{a.name}" if mod else a.name, a.asname or a.name)

    # -- assignments ----------------------------------------------------------------------------
    def _target(self, node: ast.AST, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._target(node, t, verb)
            return
        if isinstance(target, ast.Subscript):
            target = target.value
            if _dotted(target) in ("__builtins__", "sys.modules", "builtins.__dict__"):
                self.flag(node, f"{verb} {_dotted(target)}[...]")
                return
        if isinstance(target, ast.Attribute):
            dotted = _dotted(target)
            mod = self._module_of(dotted)
            if mod:
                self.flag(node, f"{verb} {dotted}")
        elif isinstance(target, ast.Name) and target.id == "__builtins__":
            self.flag(node, f"{verb} __builtins__")

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._target(node, t, "assigns to")
        if isinstance(node.value, ast.Call) and _dotted(node.value.func) == "get_ipython":
            for t in node.targets:
                if isinstance(t, ast.Name):
                    self.ipython_names.add(t.id)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node, node.target, "assigns to")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._target(node, node.target, "assigns to")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._target(node, t, "deletes")
        self.generic_visit(node)

    # -- calls ----------------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func) or ""
        resolved = name
        head = name.split(".")[0]
        if head in self.aliases and head != "get_ipython()":
            resolved = ".".join([self.aliases[head]] + name.split(".")[1:])
        if head in self.ipython_names:
            resolved = ".".join(["get_ipython()"] + name.split(".")[1:])
        last = resolved.rsplit(".", 1)[-1]
        if name in ("setattr", "delattr") and node.args:
            mod = self._module_of(_dotted(node.args[0]))
            if mod:
                self.flag(node, f"{name}() on {_dotted(node.args[0])}")
        elif resolved in HOOK_CALLS:
            self.flag(node, HOOK_CALLS[resolved])
        elif resolved.startswith("get_ipython().") and last in IPYTHON_HOOKS:
            self.flag(node, IPYTHON_HOOKS[last])
        elif name in ("exec", "eval", "compile", "__import__"):
            self.flag(node, f"runs dynamic code ({name})")
        elif resolved.split(".")[0] in NETWORK:
            self.flag(node, f"network access ({resolved})")
        if name in FILE_FUNCS or resolved in FILE_FUNCS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _outside(arg.value):
                self.flag(node, f"file access outside the notebook's folder ({name}({arg.value!r}))")
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("settrace", "setprofile"):
            if resolved not in HOOK_CALLS:
                self.flag(node, f"installs a trace/profile hook ({name})")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__" and isinstance(node.ctx, ast.Load):
            self.flag(node, "uses __builtins__")


def _python_source(source: str) -> tuple[str, list[tuple[int, str]]]:
    """Cell source with IPython syntax (``%magic``, ``!shell``) blanked; the shell lines as findings."""
    lines, found = [], []
    for i, line in enumerate(source.split("\n"), 1):
        stripped = line.lstrip()
        if stripped.startswith("!") or re.match(r"%%?(sx|system|bash|sh|script|writefile)\b", stripped):
            found.append((i, f"runs a shell command or writes a file ({stripped[:40]})"))
            lines.append("")
        elif stripped.startswith(("%", "?")) or stripped.endswith("?"):
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines), found


def audit_cells(cells: list[dict]) -> list[Finding]:
    findings: list[Finding] = []
    visitor_aliases: dict[str, str] = {}
    ipython_names: set[str] = set()
    for index, cell in enumerate(cells, 1):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") or (meta.get("grade") and not meta.get("solution")):
            continue  # restored from the gradebook before grading: the student's version never runs
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        label = meta.get("grade_id") or f"cell {index}"
        code, found = _python_source(source)
        v = _Visitor()
        v.aliases.update(visitor_aliases)
        v.ipython_names |= ipython_names
        try:
            v.visit(ast.parse(code))
        except SyntaxError as err:
            found.append((err.lineno or 0, "does not parse; read it by hand"))
        visitor_aliases, ipython_names = v.aliases, v.ipython_names  # imports carry over between cells
        findings += [Finding(label, line, what) for line, what in sorted(set(found + v.found))]
    return findings


def audit_notebook(path: Path) -> list[Finding]:
    """Findings in the student-editable code cells of ``path``; unreadable files give one finding."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        return [Finding("-", 0, f"not readable as a notebook ({type(err).__name__})")]
    return audit_cells(cells)


def audit_submissions(submitted: Path, pairs: list[tuple[str, str]]) -> dict[str, list[Finding]]:
    """``{"student/assignment/notebook.ipynb": [findings]}`` for the notebooks of ``pairs`` (every
    notebook audited is a key, with an empty list when nothing was found)."""
    report: dict[str, list[Finding]] = {}
    for student, assignment in pairs:
        for nb in sorted((submitted / student / assignment).glob("*.ipynb")):
            report[f"{student}/{assignment}/{nb.name}"] = audit_notebook(nb)
    return report


def write_report(report: dict[str, list[Finding]], dest: Path) -> None:
    """Merge ``report`` into the JSON file ``dest`` (atomic write): notebooks with findings are added or
    replaced, notebooks audited clean (a resubmission) are removed, the others are kept."""
    data: dict = {}
    if dest.is_file():
        try:
            data = json.loads(dest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
    for key, found in report.items():
        if found:
            data[key] = [asdict(f) for f in found]
        else:
            data.pop(key, None)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dict(sorted(data.items())), f, indent=1)
    os.replace(tmp, dest)
