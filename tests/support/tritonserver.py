# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real ``tritonserver`` on loopback for tests and benchmarks.

The binary comes from the ``nvidia-pytriton`` wheel installed in the test virtualenv (Triton 2.51,
CPU, Python backend). It is laid out the way the triton_server role lays it out on a host with the
native runtime: a backend directory whose ``python/`` holds links to the wheel's Python backend and
the stub built for this machine's Python, and the role's ``.pth`` hook so that Python-backend models
can import packages from a virtualenv (the stub runs an isolated interpreter that ignores
PYTHONPATH; see roles/triton_server/README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SITE_HOOK = REPO_ROOT / "roles" / "triton_server" / "files" / "oceanid-triton-site.pth"


def wheel_site_packages() -> Path:
    """The site-packages directory that holds the ``pytriton`` and ``nvidia_pytriton.libs`` trees."""
    return Path(sysconfig.get_paths()["purelib"])


def tritonserver_binary() -> Path:
    return wheel_site_packages() / "pytriton" / "tritonserver" / "bin" / "tritonserver"


def available() -> bool:
    return tritonserver_binary().is_file()


def system_python_version() -> str:
    """major.minor of the system Python whose libpython the Python-backend stub links."""
    out = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def install_site_hook() -> None:
    """Put the role's .pth hook into the system Python's site directory (idempotent, needs root).

    The hook does nothing unless OCEANID_TRITON_SITE_PACKAGES is set, which only Triton's
    environment sets, so it is harmless to every other Python program on the machine.
    """
    site_dir = Path(f"/usr/local/lib/python{system_python_version()}/dist-packages")
    target = site_dir / SITE_HOOK.name
    if target.is_file() and target.read_bytes() == SITE_HOOK.read_bytes():
        return
    site_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(SITE_HOOK.read_bytes())
    tmp.replace(target)


def make_backend_dir(root: Path) -> Path:
    """Create ``root/backends/python`` with links to the wheel's backend and the matching stub."""
    wheel = wheel_site_packages() / "pytriton" / "tritonserver"
    python_dir = root / "backends" / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    links = {
        "libtriton_python.so": wheel / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": wheel / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": wheel
        / "python_backend_stubs"
        / system_python_version()
        / "triton_python_backend_stub",
    }
    for name, source in links.items():
        link = python_dir / name
        if not link.exists():
            link.symlink_to(source)
    return root / "backends"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TritonServer:
    """One tritonserver process; ``start()``/``stop()``/``kill()``, ports chosen free at construction."""

    def __init__(
        self,
        repository: Path,
        workdir: Path,
        model_control_mode: str = "explicit",
        load_models: list[str] | None = None,
        extra_args: list[str] | None = None,
    ):
        self.repository = Path(repository)
        self.workdir = Path(workdir)
        self.model_control_mode = model_control_mode
        self.load_models = list(load_models or [])
        self.extra_args = list(extra_args or [])
        self.http_port, self.grpc_port, self.metrics_port = free_port(), free_port(), free_port()
        # The Python backend's shared-memory regions in /dev/shm start with this: a killed server leaves them
        # behind, and kill() removes them (only this server's; another may be running).
        self.shm_prefix = f"oceanid_test_{os.getpid()}_{self.http_port}_"
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "tritonserver.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        args = [
            str(tritonserver_binary()),
            f"--model-repository={self.repository}",
            f"--backend-directory={make_backend_dir(self.workdir)}",
            f"--model-control-mode={self.model_control_mode}",
            "--strict-readiness=true",
            "--exit-on-error=false",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=false",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
        ]
        args += [f"--load-model={name}" for name in self.load_models]
        return args + self.extra_args

    def environment(self) -> dict[str, str]:
        site = wheel_site_packages()
        return {
            **os.environ,
            "LD_LIBRARY_PATH": str(site / "nvidia_pytriton.libs"),
            "OCEANID_TRITON_SITE_PACKAGES": str(site),
        }

    def start(self, wait: bool = True, timeout: float = 60.0) -> TritonServer:
        install_site_hook()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        if wait:
            try:
                self.wait_live(timeout)
            except BaseException:
                self.kill()  # a server that never came up must not outlive the test that started it
                raise
        return self

    def wait_live(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log()}")
            if self.get("/v2/health/live")[0] == 200:
                return
            time.sleep(0.05)
        raise TimeoutError(f"tritonserver not live after {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server and its backend stubs (one process group), then remove its shared-memory regions."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)
        for region in Path("/dev/shm").glob(self.shm_prefix + "*"):
            region.unlink(missing_ok=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    # Small HTTP helpers, so tests do not need tritonclient.
    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, (json.loads(raw) if raw else None)
            except ValueError:
                return err.code, raw.decode(errors="replace")
        except OSError:
            return 0, None

    def get(self, path: str) -> tuple[int, object]:
        return self.request("GET", path)

    def index(self) -> list[dict]:
        return self.request("POST", "/v2/repository/index", {})[1] or []

    def infer(self, model: str, inputs: list[dict], version: str = "") -> tuple[int, object]:
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        return self.request("POST", path, {"inputs": inputs})


def copy_model(source: Path, repository: Path, name: str | None = None) -> Path:
    """Copy a model directory into a repository (tests use it to build repositories)."""
    dest = Path(repository) / (name or Path(source).name)
    shutil.copytree(source, dest, dirs_exist_ok=True)
    return dest


if __name__ == "__main__":  # a manual check: python tests/support/tritonserver.py REPO
    server = TritonServer(Path(sys.argv[1]), Path("/tmp/oceanid-triton-manual"), load_models=["*"]).start()
    print(server.url, server.index())
    server.stop()
