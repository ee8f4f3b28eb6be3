# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real tritonserver serving docling_granite_python, and ls-triton-adapter as a subprocess on loopback.

Shared by tests/integration/ls_triton_adapter and benchmarks/adapter/run.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import tritonserver
from tests.support.triton_models import MODELS_DIR, install_model

APP = Path(__file__).resolve().parents[3] / "roles" / "ls_triton_adapter" / "files" / "ls_triton_adapter.py"
MODEL = "docling_granite_python"


def serve_docling(root: Path, instance_count: int = 1) -> tritonserver.TritonServer:
    """A started tritonserver (explicit mode) with docling_granite_python READY, rendered as the role deploys it."""
    install_model(
        MODELS_DIR / MODEL,
        root / "models",
        triton_model_name=MODEL,
        triton_model_instance_kind="KIND_CPU",
        triton_model_gpus=[],
        triton_model_instance_count=instance_count,
        triton_model_max_batch_size=0,
        triton_model_parameters={},
    )
    server = tritonserver.TritonServer(root / "models", root / "work", load_models=[MODEL]).start()
    deadline = time.monotonic() + 60
    while server.get(f"/v2/models/{MODEL}/ready")[0] != 200:
        if time.monotonic() > deadline:
            server.kill()
            raise TimeoutError(f"{MODEL} not ready after 60 s:\n{server.log()}")
        time.sleep(0.1)
    return server


class AdapterProcess:
    """The role's app file on this venv's Python; its stdout (the log) goes to a file in ``workdir``."""

    def __init__(self, workdir: Path, triton_url: str, **settings: str):
        self.port = tritonserver.free_port()
        self.log_path = Path(workdir) / f"adapter-{self.port}.log"
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("LS_TRITON", "CF_", "LABEL_STUDIO"))
        }
        env.update(TRITON_BASE_URL=triton_url, PORT=str(self.port), BIND="127.0.0.1", **settings)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, str(APP)], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"ls-triton-adapter did not start:\n{self.log()}") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def call(self, method: str, path: str, body=None, timeout: float = 60) -> tuple[int, dict, float]:
        """(status, JSON body, seconds) of one request."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read()), time.monotonic() - started
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
