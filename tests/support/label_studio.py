# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real Label Studio on loopback for tests, and small ML-backend stand-ins.

Label Studio (``label-studio`` pinned below) lives in its own virtualenv, ``.cache/label-studio/venv``: its
dependencies (Django and friends) must not meet the test venv's. ``ensure_venv()`` creates it on a fresh clone
(``python3 -m venv`` + ``pip install``, a few minutes), under a file lock so that parallel test sessions build it once.

``LabelStudio`` runs ``label-studio start`` on a free 127.0.0.1 port with SQLite in a temp dir, an admin user and
a legacy API token from the environment (``LABEL_STUDIO_USERNAME``/``_PASSWORD``/``_USER_TOKEN``, legacy tokens
enabled), ``ML_BLOCK_LOCAL_IP=false`` and ``SSRF_PROTECTION_ENABLED=false`` so that loopback ML backends and
webhook receivers are accepted, and waits for ``/health``.

``FakeMLBackend`` answers ``/health``, ``/setup``, ``/predict`` and ``/webhook`` (stdlib http.server, a thread);
``unused_url()`` is a loopback URL where nothing listens (the "backend down" case).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# The one pin of the Label Studio used by the tests (the label_studio role pins its own for hosts).
LABEL_STUDIO_VERSION = "1.23.2"
VENV = REPO_ROOT / ".cache" / "label-studio" / "venv"
ADMIN_EMAIL = "admin@example.com"
# Not a secret: a throw-away instance on loopback. The token is the legacy key (``Token <key>``), 40 hex digits.
ADMIN_PASSWORD = "oceanid-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unused_url() -> str:
    """An http URL on loopback where nothing listens (bound and closed at once)."""
    return f"http://127.0.0.1:{free_port()}"


def label_studio_binary() -> Path:
    return VENV / "bin" / "label-studio"


def _installed_version() -> str | None:
    python = VENV / "bin" / "python"
    if not python.is_file() or not label_studio_binary().is_file():
        return None
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() if out.returncode == 0 else None


def ensure_venv(log=sys.stderr) -> Path:
    """The label-studio virtualenv, created (or upgraded to the pin) when missing; returns its label-studio."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "venv.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() == LABEL_STUDIO_VERSION:
            return label_studio_binary()
        print(f"creating {VENV} with label-studio=={LABEL_STUDIO_VERSION} (a few minutes)", file=log, flush=True)
        if not (VENV / "bin" / "python").is_file():
            subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", f"label-studio=={LABEL_STUDIO_VERSION}"],
            check=True,
        )
        return label_studio_binary()


def http_json(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30.0):
    """One request; returns (status, parsed JSON or text). HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback test server
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


class LabelStudio:
    """One ``label-studio start`` process on 127.0.0.1 with SQLite under ``workdir``."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.token = secrets.token_hex(20)
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "label-studio.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "HEARTEX_", "DJANGO_"))}
        env.update(
            LABEL_STUDIO_USERNAME=ADMIN_EMAIL,
            LABEL_STUDIO_PASSWORD=ADMIN_PASSWORD,
            LABEL_STUDIO_USER_TOKEN=self.token,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            LABEL_STUDIO_BASE_DATA_DIR=str(self.workdir / "data"),
            DJANGO_DB="sqlite",
            ML_BLOCK_LOCAL_IP="false",
            SSRF_PROTECTION_ENABLED="false",
            LATEST_VERSION_CHECK="false",
            COLLECT_ANALYTICS="false",
            LOG_LEVEL="WARNING",
        )
        return env

    def start(self, timeout: float = 300.0) -> LabelStudio:
        binary = ensure_venv()
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(
            [
                str(binary),
                "start",
                "--no-browser",
                "--internal-host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.workdir / "data"),
                "--enable-legacy-api-token",
                "--log-level",
                "WARNING",
            ],
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.process.returncode}:\n{self.log()}")
            try:
                status, body = http_json("GET", self.url + "/health", timeout=2)
            except OSError:
                status, body = None, None
            healthy = status == 200 and isinstance(body, dict) and body.get("status") == "UP"
            # /health answers before the admin user exists: wait until the token authenticates too.
            if healthy and self.api("GET", "/api/current-user/whoami")[0] == 200:
                return
            time.sleep(0.5)
        raise TimeoutError(f"label-studio not healthy after {timeout} s:\n{self.log()}")

    def api(self, method: str, path: str, body=None, token: str | None = None, bearer: str | None = None):
        """An API call as the admin (legacy token by default, or ``bearer`` access token)."""
        auth = f"Bearer {bearer}" if bearer else f"Token {token or self.token}"
        return http_json(method, self.url + path, body, headers={"Authorization": auth})

    def create_personal_access_token(self) -> str:
        """A personal access token (JWT refresh token) of the admin; an existing one is blacklisted first."""
        status, body = self.api("POST", "/api/token/")
        if status == 409:
            for entry in self.api("GET", "/api/token/")[1] or []:
                self.api("POST", "/api/token/blacklist/", {"refresh": entry.get("token")})
            status, body = self.api("POST", "/api/token/")
        if status != 201:
            raise RuntimeError(f"POST /api/token/ answered {status}: {body}")
        return body["token"]

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""


class FakeMLBackend:
    """A minimal ML backend on loopback: ``/health``, ``/setup``, ``/predict``, ``/webhook``; records requests."""

    def __init__(self, model_version: str = "fake-v1"):
        self.model_version = model_version
        self.requests: list[tuple[str, str, object]] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # silence the per-request log
                pass

            def _answer(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                backend.requests.append(("GET", self.path, None))
                if self.path.rstrip("/") in ("", "/health"):
                    self._answer(200, {"status": "UP", "model_class": "FakeMLBackend"})
                else:
                    self._answer(404, {"detail": "not found"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    body = None
                backend.requests.append(("POST", self.path, body))
                path = self.path.rstrip("/")
                if path == "/setup":
                    self._answer(200, {"model_version": backend.model_version})
                elif path == "/predict":
                    tasks = (body or {}).get("tasks") or []
                    self._answer(200, {"results": [{"result": [], "score": 0.0} for _task in tasks]})
                elif path == "/webhook":
                    self._answer(200, {"status": "Unknown event"})
                else:
                    self._answer(404, {"detail": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeMLBackend:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
