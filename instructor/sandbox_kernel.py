"""Imported inside the autograde sandbox only (instructor/sandbox.py binds this file read-only into each
student kernel as ``course_sandbox_kernel``): ipykernel's output stream with a cap on what one
kernel may print. Past ``COURSE_SANDBOX_OUTPUT`` characters (stdout and stderr together) the rest
is dropped, with one note, instead of being sent to nbgrader: a cell printing 1 GB completes with
its first megabytes and the rest of the notebook is graded. Code that works around it (writing to
the kernel's sockets itself) still meets nbgrader's own cap (instructor/sandbox.py, LimitedExecute).
"""
from __future__ import annotations

import os

from ipykernel.iostream import OutStream

NOTE = "\n[autograde sandbox] output limit reached: the rest of this notebook's output is dropped\n"


class CappedOutStream(OutStream):
    limit = int(os.environ.get("COURSE_SANDBOX_OUTPUT") or 8 << 20)
    _used = [0]  # shared by stdout and stderr: the kernel's whole output
    _noted = [False]

    def write(self, string: str) -> int | None:  # type: ignore[override]
        if not isinstance(string, str):
            return super().write(string)  # ipykernel's TypeError
        room = self.limit - self._used[0]
        if len(string) <= room:
            self._used[0] += len(string)
            return super().write(string)
        if room > 0:
            self._used[0] = self.limit
            super().write(string[:room])
        if not self._noted[0]:
            self._noted[0] = True
            super().write(NOTE)
        return len(string)
