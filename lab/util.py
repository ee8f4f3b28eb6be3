"""Small process and file helpers shared by the lab's modules."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


class LabError(RuntimeError):
    """A failure the user can act on; printed without a traceback."""


def run(
    cmd: list[str],
    *,
    check: bool = True,
    capture: bool = True,
    input_text: str | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        cmd,
        check=False,
        text=True,
        input=input_text,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip()
        raise LabError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{detail}")
    return proc


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file so that a reader sees the old or the new content, never a half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def spawn_in_background(argv: list[str], console_log: Path, pid_file: Path, cwd: Path) -> int:
    """Start a lab process that outlives this command (a host's or a cache's supervisor): its own session, output
    appended to console_log, its pid written to pid_file. Returns the pid."""
    console = open(console_log, "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True
    )
    console.close()
    write_atomic(pid_file, str(proc.pid))
    return proc.pid
