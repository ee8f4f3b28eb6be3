# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ls-triton-adapter: a Label Studio ML backend that sends PDFs to Triton (model docling_granite_python).

Endpoints (JSON in and out):

* ``GET /health`` and ``GET /``: ``{"status": "UP", "model_class": ..., "triton": {...}}``, always 200 while the
  process serves (Label Studio validates a backend with a 1 s timeout); ``triton.ready`` says whether Triton
  answered ready within the health timeout.
* ``POST /setup``: remembers the project's ``hostname`` and ``access_token`` (to read ``/data/...`` files back from
  Label Studio) and answers ``{"model_version": "<model>:<version>"}``.
* ``POST /predict``: the Label Studio form ``{"tasks": [...], "label_config": ...}`` answers
  ``{"results": [{"result": [...], "score": ..., "model_version": ...}, ...]}``, one item per task; the direct form
  ``{"model": ..., "pdf_base64": ..., "prompt": ...}`` answers the model's own JSON result.
* ``POST /webhook``, ``GET /versions``, ``GET /metrics``: the rest of the ML-backend contract.

Errors: a JSON body ``{"status": <code>, "detail": "<message>"}``: 400 for a bad request, 413 for a body or PDF over
the limit, 422 when Triton rejected the document (its own message), 502 when Triton cannot be reached or fails,
503 when every worker is busy and the queue is full, 504 when Triton did not answer within the timeout. In the
Label Studio form, a task whose document cannot be read or is rejected gets an empty prediction (the error is
logged with the task id); an error that would fail every task (Triton down or slow, no TextArea in the label
config) fails the whole request.

Configuration is read from the environment once at start (see ``Config.from_env``). Triton is called with
tritonclient.http; its gevent-based clients are not thread-safe, so each worker thread of the fixed pool has
its own (created on first use and kept). Logs go to stdout. Secrets (CF Access, tokens) are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import queue
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler

LOG = logging.getLogger("ls_triton_adapter")
MODEL_CLASS = "LsTritonAdapter"
DATA_URI = re.compile(r"^data:(?P<type>[^;,]*)(?P<params>(;[^;,]*)*?);base64,", re.IGNORECASE)
BASE64_ALPHABET = re.compile(rb"^[A-Za-z0-9+/=\s]*$")


class AdapterError(Exception):
    """An error with the HTTP status the adapter answers with."""

    status = 500

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(AdapterError):
    status = 400


class Unauthorized(BadRequest):
    """Label Studio refused the token for a task's file (401/403)."""


class TooLarge(AdapterError):
    status = 413


class DocumentRejected(AdapterError):
    """Triton answered 4xx for this document (a bad PDF): the message is Triton's."""

    status = 422


class TritonUnavailable(AdapterError):
    status = 502


class TritonAccessRefused(TritonUnavailable):
    """Triton's URL answered 401/403: Cloudflare Access (or another gate in front of Triton) refused the adapter."""


class TritonTimeout(AdapterError):
    status = 504


# --- configuration ---------------------------------------------------------------------------------------------


def _env_number(env, name: str, default, convert=float):
    """A positive number from the environment (``default`` when unset or empty); ValueError naming the variable."""
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = convert(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not {'an integer' if convert is int else 'a number'}") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be greater than 0")
    return value


def parse_triton_url(url: str) -> tuple[str, bool]:
    """TRITON_BASE_URL (``http(s)://host[:port][/prefix]``) -> (tritonclient's ``host:port/prefix``, ssl)."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"TRITON_BASE_URL={url!r} must be an http:// or https:// URL with a host")
    if parsed.username or parsed.password:
        raise ValueError("TRITON_BASE_URL must not carry credentials (use CF_ACCESS_CLIENT_ID/SECRET)")
    if parsed.query or parsed.fragment:
        raise ValueError(f"TRITON_BASE_URL={url!r} must not have a query or fragment")
    ssl = parsed.scheme == "https"
    port = parsed.port or (443 if ssl else 80)
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    return f"{host}:{port}{parsed.path.rstrip('/')}", ssl


class Config:
    """Settings from the environment (the unit's EnvironmentFile or the pod's env)."""

    def __init__(self, **values):
        self.triton_url = values.get("triton_url", "http://127.0.0.1:8000")
        self.triton_target, self.triton_ssl = parse_triton_url(self.triton_url)
        self.model = values.get("model", "docling_granite_python")
        self.connect_timeout = float(values.get("connect_timeout", 3.0))
        self.inference_timeout = float(values.get("inference_timeout", 60.0))
        self.health_timeout = float(values.get("health_timeout", 0.5))
        self.fetch_timeout = float(values.get("fetch_timeout", 10.0))
        self.max_pdf_bytes = int(values.get("max_pdf_bytes", 50 * 1024 * 1024))
        self.workers = int(values.get("workers", 8))
        self.queue_size = int(values.get("queue_size", 32))
        self.bind = values.get("bind", "127.0.0.1")
        self.port = int(values.get("port", 9090))
        self.pdf_key = values.get("pdf_key", "pdf")
        self.prompt = values.get("prompt", "")
        self.cf_access_client_id = values.get("cf_access_client_id", "")
        self.cf_access_client_secret = values.get("cf_access_client_secret", "")
        self.label_studio_url = values.get("label_studio_url", "").rstrip("/")
        self.label_studio_api_key = values.get("label_studio_api_key", "")
        if bool(self.cf_access_client_id) != bool(self.cf_access_client_secret):
            raise ValueError("CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET must be set together (one is empty)")
        # The request body holds the PDF in base64 (4/3 of its size) plus the rest of the task.
        self.max_body_bytes = self.max_pdf_bytes * 4 // 3 + 1024 * 1024

    @classmethod
    def from_env(cls, env=None) -> Config:
        env = os.environ if env is None else env
        return cls(
            triton_url=env.get("TRITON_BASE_URL", "") or "http://127.0.0.1:8000",
            model=env.get("LS_TRITON_ADAPTER_MODEL", "") or "docling_granite_python",
            connect_timeout=_env_number(env, "LS_TRITON_ADAPTER_CONNECT_TIMEOUT", 3.0),
            inference_timeout=_env_number(env, "LS_TRITON_ADAPTER_INFERENCE_TIMEOUT", 60.0),
            health_timeout=_env_number(env, "LS_TRITON_ADAPTER_HEALTH_TIMEOUT", 0.5),
            fetch_timeout=_env_number(env, "LS_TRITON_ADAPTER_FETCH_TIMEOUT", 10.0),
            max_pdf_bytes=_env_number(env, "LS_TRITON_ADAPTER_MAX_PDF_BYTES", 50 * 1024 * 1024, int),
            workers=_env_number(env, "LS_TRITON_ADAPTER_WORKERS", 8, int),
            queue_size=_env_number(env, "LS_TRITON_ADAPTER_QUEUE_SIZE", 32, int),
            bind=env.get("BIND", "") or "127.0.0.1",
            port=_env_number(env, "PORT", 9090, int),
            pdf_key=env.get("LS_TRITON_ADAPTER_PDF_KEY", "") or "pdf",
            prompt=env.get("LS_TRITON_ADAPTER_PROMPT", ""),
            cf_access_client_id=env.get("CF_ACCESS_CLIENT_ID", ""),
            cf_access_client_secret=env.get("CF_ACCESS_CLIENT_SECRET", ""),
            label_studio_url=env.get("LABEL_STUDIO_URL", ""),
            label_studio_api_key=env.get("LABEL_STUDIO_API_KEY", ""),
        )

    def triton_headers(self) -> dict:
        if not self.cf_access_client_id:
            return {}
        return {
            "CF-Access-Client-Id": self.cf_access_client_id,
            "CF-Access-Client-Secret": self.cf_access_client_secret,
        }


# --- pure logic: label config, task data, shapes -------------------------------------------------------------


def parse_label_config(label_config: str) -> tuple[str, str]:
    """(from_name, to_name) of the first TextArea control of a Label Studio label config."""
    if not label_config or not str(label_config).strip():
        raise BadRequest("the project's label config is empty: it needs a <TextArea name=... toName=...> control")
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as err:
        raise BadRequest(f"the project's label config is not valid XML: {err}") from None
    for element in root.iter():
        if element.tag == "TextArea":
            name, to_name = element.get("name", ""), element.get("toName", "")
            if not name or not to_name:
                raise BadRequest("the label config's first <TextArea> needs both name and toName attributes")
            return name, to_name.split(",")[0].strip()
    raise BadRequest(
        "the project's label config has no <TextArea> control to put the extracted text in "
        '(the generated interface has <TextArea name="extracted_text" toName=...>)'
    )


def _checked_base64(payload: str, max_pdf_bytes: int, what: str) -> str:
    """The base64 text itself (no decode, no re-encode: Triton gets it as it came), after cheap checks."""
    if not isinstance(payload, str) or not payload.strip():
        raise BadRequest(f"{what} is empty")
    size = len(payload) * 3 // 4
    if size > max_pdf_bytes:
        raise TooLarge(f"{what} holds about {size} bytes, over the limit of {max_pdf_bytes} bytes")
    head = payload[:64].encode("ascii", "replace")
    if not BASE64_ALPHABET.match(head):
        raise BadRequest(f"{what} is not base64 (it starts with {payload[:16]!r})")
    cleaned = re.sub(r"\s", "", payload[:1100])[:1020]
    try:
        start = base64.b64decode(cleaned[: len(cleaned) // 4 * 4], validate=False)
    except (binascii.Error, ValueError) as err:
        raise BadRequest(f"{what} is not valid base64: {err}") from None
    if b"%PDF-" not in start:
        raise BadRequest(f"{what} does not decode to a PDF (no '%PDF-' header at its start)")
    return payload


def split_data_uri(value: str) -> str | None:
    """The base64 part of a ``data:...;base64,`` URI, or None when ``value`` is not one."""
    match = DATA_URI.match(value)
    if not match:
        return None
    return value[match.end() :]


def task_pdf_reference(task: dict, pdf_key: str) -> str:
    """The task's document reference (data URI, URL or Label Studio path) from its data."""
    data = task.get("data") if isinstance(task, dict) else None
    if not isinstance(data, dict):
        raise BadRequest("the task has no data object")
    value = data.get(pdf_key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"the task's data has no {pdf_key!r} key with a document (keys: {sorted(data)})")
    return value.strip()


def prediction(from_name: str, to_name: str, text: str | None, model_version: str) -> dict:
    """One Label Studio prediction item; an empty one (no result) when ``text`` is None."""
    if text is None:
        return {"result": [], "score": 0.0, "model_version": model_version}
    return {
        "result": [{"from_name": from_name, "to_name": to_name, "type": "textarea", "value": {"text": [text]}}],
        "score": 1.0 if text.strip() else 0.0,
        "model_version": model_version,
    }


def error_body(status: int, detail: str) -> dict:
    return {"status": status, "detail": detail}


def redact_url(url: str) -> str:
    """A URL without credentials or query (for logs and /health)."""
    parsed = urllib.parse.urlsplit(url)
    netloc = parsed.hostname or ""
    if parsed.port:
        netloc += f":{parsed.port}"
    return urllib.parse.urlunsplit((parsed.scheme, netloc, parsed.path, "", ""))


def label_studio_auth_header(token: str) -> str:
    """``Token <key>`` for a legacy token; a personal access token (a JWT) is exchanged by the caller."""
    return f"Token {token}"


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (read without verifying), or None when ``token`` is not a JWT with one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


# --- Triton ----------------------------------------------------------------------------------------------------


class Triton:
    """tritonclient.http clients, one pair per thread (tritonclient's clients are not thread-safe)."""

    def __init__(self, config: Config):
        import gevent  # noqa: F401  (tritonclient.http needs it; fail at start, not at the first request)
        import numpy as np
        import tritonclient.http as httpclient
        from geventhttpclient.response import HTTPConnectionClosed
        from tritonclient.utils import InferenceServerException

        self._np = np
        self._http = httpclient
        self._gevent = sys.modules["gevent"]
        self._error = InferenceServerException
        self._closed = HTTPConnectionClosed
        self.config = config
        self.headers = config.triton_headers()
        self._local = threading.local()
        self._versions: dict = {}
        self._versions_lock = threading.Lock()

    def _client(self, kind: str):
        client = getattr(self._local, kind, None)
        if client is None:
            timeout = self.config.inference_timeout if kind == "infer" else self.config.health_timeout
            client = self._http.InferenceServerClient(
                self.config.triton_target,
                ssl=self.config.triton_ssl,
                connection_timeout=min(self.config.connect_timeout, timeout),
                network_timeout=timeout,
            )
            setattr(self._local, kind, client)
        return client

    def _drop(self, kind: str) -> None:
        client = getattr(self._local, kind, None)
        if client is not None:
            setattr(self._local, kind, None)
            try:
                client.close()
            except Exception:  # a broken client is discarded either way
                pass

    def _call(self, kind: str, budget: float, what: str, func):
        """Run ``func(client)`` within ``budget`` seconds; map every failure to an AdapterError."""
        where = redact_url(self.config.triton_url)
        try:
            with self._gevent.Timeout(
                budget, TritonTimeout(f"Triton at {where} did not answer {what} within {budget:g} s")
            ):
                try:
                    return func(self._client(kind))
                except self._closed:
                    # A kept-alive connection that Triton (or a proxy: cloudflared, a load balancer) closed while it
                    # was idle. geventhttpclient retries only idempotent methods, and an inference is a POST; it has
                    # no side effect, so it is sent once more, on a new connection, within the same budget.
                    self._drop(kind)
                    return func(self._client(kind))
        except self._closed as err:
            self._drop(kind)
            raise TritonUnavailable(f"Triton at {where} closed the connection during {what} twice: {err}") from None
        except TritonTimeout:
            self._drop(kind)  # its connection may still carry the late answer
            raise
        except self._error as err:
            status = err.status()
            message = err.message() or str(err)
            if status in ("401", "403"):
                # Triton itself never answers 401/403: a gate in front of it (Cloudflare Access) refused us.
                raise TritonAccessRefused(self._refused_message(where, what, status)) from None
            if status and status.isdigit() and 400 <= int(status) < 500:
                raise DocumentRejected(f"Triton rejected the request ({what}, HTTP {status}): {message}") from None
            self._drop(kind)
            if "timed out" in message.lower() or "timeout" in message.lower():
                raise TritonTimeout(f"Triton at {where} did not answer {what} in time: {message}") from None
            raise TritonUnavailable(
                f"Triton at {where} failed {what}" + (f" (HTTP {status})" if status else "") + f": {message}"
            ) from None
        except (OSError, self._gevent.Timeout) as err:
            self._drop(kind)
            if isinstance(err, (socket.timeout, TimeoutError)) or "timed out" in str(err).lower():
                raise TritonTimeout(f"Triton at {where} did not answer {what} within the timeout: {err}") from None
            raise TritonUnavailable(f"Triton at {where} is unreachable ({what}): {err}") from None

    def _refused_message(self, where: str, what: str, status: str) -> str:
        token = (
            "the configured service token (CF_ACCESS_CLIENT_ID/SECRET) was not admitted: expired, rotated away "
            "or not in the Access application's policy"
            if self.config.cf_access_client_id
            else "no service token is configured (CF_ACCESS_CLIENT_ID/CF_ACCESS_CLIENT_SECRET are empty)"
        )
        return f"Triton at {where} refused {what} with HTTP {status} (Cloudflare Access in front of it?): {token}"

    def infer(self, model: str, pdf_base64: str, prompt: str) -> dict:
        """The model's ``result`` JSON for one base64 PDF."""
        np, http = self._np, self._http

        def run(client):
            pdf = http.InferInput("pdf_base64", [1], "BYTES")
            pdf.set_data_from_numpy(np.array([pdf_base64.encode("ascii")], dtype=np.object_))
            text = http.InferInput("prompt", [1], "BYTES")
            text.set_data_from_numpy(np.array([prompt.encode("utf-8")], dtype=np.object_))
            outputs = [http.InferRequestedOutput("result", binary_data=True)]
            return client.infer(model, [pdf, text], outputs=outputs, headers=self.headers)

        result = self._call("infer", self.config.connect_timeout + self.config.inference_timeout, "the inference", run)
        raw = result.as_numpy("result")
        if raw is None or raw.size < 1:
            raise TritonUnavailable(f"Triton's answer for model {model!r} has no 'result' output")
        value = raw.reshape(-1)[0]
        try:
            return json.loads(value.decode("utf-8") if isinstance(value, bytes) else value)
        except ValueError as err:
            raise TritonUnavailable(f"model {model!r} returned a result that is not JSON: {err}") from None

    def model_version(self, model: str) -> str:
        """``<model>:<version>`` from Triton's model metadata (cached for 60 s); ``<model>`` when unknown."""
        now = time.monotonic()
        with self._versions_lock:
            cached = self._versions.get(model)
        if cached and now - cached[1] < 60:
            return cached[0]
        try:
            meta = self._call(
                "probe",
                self.config.health_timeout,
                "model metadata",
                lambda client: client.get_model_metadata(model, headers=self.headers),
            )
            versions = sorted((str(v) for v in meta.get("versions") or []), key=lambda v: (len(v), v))
            version = f"{meta.get('name', model)}:{versions[-1]}" if versions else model
        except AdapterError as err:
            LOG.warning("model version of %s unknown: %s", model, err)
            return cached[0] if cached else model
        with self._versions_lock:
            self._versions[model] = (version, now)
        return version

    def health(self, model: str) -> dict:
        """Whether Triton and the model answer ready, both within one health timeout in all; never raises."""
        status = {"url": redact_url(self.config.triton_url), "model": model, "ready": False, "model_ready": False}
        deadline = time.monotonic() + self.config.health_timeout
        try:
            status["ready"] = bool(
                self._call(
                    "probe",
                    self.config.health_timeout,
                    "the readiness check",
                    lambda client: client.is_server_ready(headers=self.headers),
                )
            )
            status["model_ready"] = bool(
                self._call(
                    "probe",
                    max(0.05, deadline - time.monotonic()),
                    "the model readiness check",
                    lambda client: client.is_model_ready(model, headers=self.headers),
                )
            )
        except AdapterError as err:
            status["error"] = str(err)
        return status


# --- the adapter: request handling independent of HTTP --------------------------------------------------------


class Adapter:
    def __init__(self, config: Config, triton=None):
        self.config = config
        self.triton = triton if triton is not None else Triton(config)
        self._projects: dict = {}  # project id -> {"hostname", "access_token"} from /setup
        self._lock = threading.Lock()
        self._ls_access: tuple[str, float] | None = None  # Bearer token from a personal access token

    # /setup
    def setup(self, body: dict) -> dict:
        project = str(body.get("project") or "").split(".", maxsplit=1)[0]
        hostname, token = body.get("hostname"), body.get("access_token")
        if project and (hostname or token):
            with self._lock:
                self._projects[project] = {"hostname": (hostname or "").rstrip("/"), "access_token": token or ""}
        return {"model_version": self.triton.model_version(self.config.model)}

    # /predict, direct (the seed's form)
    def predict_direct(self, body: dict) -> dict:
        model = body.get("model") or self.config.model
        if not isinstance(model, str):
            raise BadRequest("'model' must be a string")
        prompt = body.get("prompt") or ""
        if not isinstance(prompt, str):
            raise BadRequest("'prompt' must be a string")
        pdf = body.get("pdf_base64")
        if not isinstance(pdf, str):
            raise BadRequest("'pdf_base64' (the PDF, base64) is missing or not a string")
        return self.triton.infer(model, _checked_base64(pdf, self.config.max_pdf_bytes, "pdf_base64"), prompt)

    # /predict, Label Studio form
    def predict_tasks(self, body: dict) -> dict:
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise BadRequest("'tasks' must be a list of Label Studio tasks")
        from_name, to_name = parse_label_config(body.get("label_config") or "")
        project = str(body.get("project") or "").split(".", maxsplit=1)[0]
        model = self.config.model
        version = self.triton.model_version(model)
        results = []
        for task in tasks:
            task_id = task.get("id") if isinstance(task, dict) else None
            try:
                pdf = self.task_pdf_base64(task, project)
                answer = self.triton.infer(model, pdf, self.config.prompt)
                text = answer.get("text") if isinstance(answer, dict) else None
                results.append(prediction(from_name, to_name, text if isinstance(text, str) else "", version))
            except (TritonUnavailable, TritonTimeout):
                raise  # every task would fail the same way: fail the request, clearly
            except AdapterError as err:
                LOG.warning("task %s: no prediction: %s", task_id, err)
                results.append(prediction(from_name, to_name, None, version))
        return {"results": results}

    def task_pdf_base64(self, task: dict, project: str) -> str:
        reference = task_pdf_reference(task, self.config.pdf_key)
        inline = split_data_uri(reference)
        if inline is not None:
            return _checked_base64(inline, self.config.max_pdf_bytes, f"task data {self.config.pdf_key!r}")
        url, setup_token, own_file = self.resolve_url(reference, project)
        data = self.read_label_studio_file(url, setup_token) if own_file else self.fetch(url, {})
        if not data.startswith(b"%PDF-") and b"%PDF-" not in data[:1024]:
            raise BadRequest(f"{redact_url(url)} is not a PDF (no '%PDF-' header at its start)")
        return base64.b64encode(data).decode("ascii")

    def resolve_url(self, reference: str, project: str) -> tuple[str, str, bool]:
        """(absolute URL of a task's document, the project's token from /setup, whether it is Label Studio's file)."""
        with self._lock:
            setup = dict(self._projects.get(project) or {})
        hostname = setup.get("hostname") or self.config.label_studio_url
        parsed = urllib.parse.urlsplit(reference)
        if parsed.scheme in ("http", "https"):
            url = reference
        elif reference.startswith("/"):
            if not hostname:
                raise BadRequest(
                    f"the task's document {reference!r} is a Label Studio path, but no Label Studio URL is known "
                    "(none came with /setup and LABEL_STUDIO_URL is not set)"
                )
            url = hostname + reference
        else:
            raise BadRequest(
                f"the task's document must be a data: URI, an http(s) URL or a /data/... path, not {reference[:40]!r}"
            )
        own_file = bool(hostname) and url.startswith(hostname + "/")
        return url, setup.get("access_token") or "", own_file

    def read_label_studio_file(self, url: str, setup_token: str) -> bytes:
        """A Label Studio file, with the legacy token from /setup, then (when that is refused: legacy tokens may be
        disabled in the organization) with LABEL_STUDIO_API_KEY."""
        tried, refused = [], None
        for get_auth in (
            lambda: label_studio_auth_header(setup_token) if setup_token else "",
            self.configured_authorization,
        ):
            auth = get_auth()  # the configured key is exchanged (personal access token) only when needed
            if not auth or auth in tried:
                continue
            tried.append(auth)
            try:
                return self.fetch(url, {"Authorization": auth})
            except Unauthorized as err:
                refused = err
        if refused is not None:
            raise refused
        return self.fetch(url, {})

    def configured_authorization(self) -> str:
        """The Authorization header for LABEL_STUDIO_API_KEY ("" when unset)."""
        key = self.config.label_studio_api_key
        if not key:
            return ""
        if jwt_expiry(key) is None:
            return label_studio_auth_header(key)
        # A personal access token is a refresh token: exchange it for a short-lived access token (as the SDK does).
        with self._lock:
            cached = self._ls_access
        if cached and cached[1] - 30 > time.time():
            return f"Bearer {cached[0]}"
        body = json.dumps({"refresh": key}).encode()
        request = urllib.request.Request(
            self.config.label_studio_url + "/api/token/refresh/",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.fetch_timeout) as response:
                access = json.loads(response.read())["access"]
        except (OSError, ValueError, KeyError) as err:
            raise BadRequest(f"LABEL_STUDIO_API_KEY (a personal access token) could not be exchanged: {err}") from None
        with self._lock:
            self._ls_access = (access, jwt_expiry(access) or time.time() + 240)
        return f"Bearer {access}"

    def fetch(self, url: str, headers: dict) -> bytes:
        limit = self.config.max_pdf_bytes
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.config.fetch_timeout) as response:
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > limit:
                    raise TooLarge(f"{redact_url(url)} is {length} bytes, over the limit of {limit} bytes")
                data = response.read(limit + 1)
        except urllib.error.HTTPError as err:
            error = Unauthorized if err.code in (401, 403) else BadRequest
            raise error(f"reading {redact_url(url)} failed: HTTP {err.code} {err.reason}") from None
        except (OSError, ValueError) as err:
            raise BadRequest(f"reading {redact_url(url)} failed: {err}") from None
        if len(data) > limit:
            raise TooLarge(f"{redact_url(url)} is over the limit of {limit} bytes")
        return data

    # /health
    def health(self) -> dict:
        return {"status": "UP", "model_class": MODEL_CLASS, "triton": self.triton.health(self.config.model)}

    def versions(self) -> dict:
        return {"versions": [self.triton.model_version(self.config.model)]}

    @staticmethod
    def webhook(body: dict) -> tuple[int, dict]:
        action = body.get("action")
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED", "START_TRAINING"):
            # Nothing to train: the model is Triton's. Acknowledged so that Label Studio does not report an error.
            return 201, {"result": None, "status": "ok"}
        return 200, {"status": "Unknown event"}

    def handle(self, method: str, path: str, body: dict | None) -> tuple[int, dict]:
        """(status, JSON body) for one request; AdapterError is mapped to its status."""
        route = path.split("?", 1)[0].rstrip("/") or "/"
        try:
            if method == "GET":
                if route in ("/", "/health"):
                    return 200, self.health()
                if route == "/versions":
                    return 200, self.versions()
                if route == "/metrics":
                    return 200, {}
            elif method == "POST":
                if not isinstance(body, dict):
                    raise BadRequest("the request body must be a JSON object")
                if route == "/predict":
                    if "tasks" in body:
                        return 200, self.predict_tasks(body)
                    return 200, self.predict_direct(body)
                if route == "/setup":
                    return 200, self.setup(body)
                if route == "/webhook":
                    return self.webhook(body)
            else:
                return 405, error_body(405, f"method {method} is not allowed")
            return 404, error_body(404, f"no endpoint {method} {route}")
        except AdapterError as err:
            return err.status, error_body(err.status, str(err))


# --- HTTP: a fixed pool of worker threads ----------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server_version = "ls-triton-adapter"
    protocol_version = "HTTP/1.1"
    timeout = 30  # reading a request: a client that stalls cannot hold a worker longer than this

    def log_message(self, format, *args):
        pass  # one line per request is logged by _respond

    def _respond(self, status: int, payload: dict, started: float) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True
        level = logging.INFO if status < 500 else logging.ERROR
        detail = f" {payload.get('detail')}" if status >= 400 and isinstance(payload, dict) else ""
        LOG.log(
            level,
            "%s %s %d %.1f ms%s",
            self.command,
            self.path.split("?")[0],
            status,
            (time.monotonic() - started) * 1000,
            detail,
        )

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        adapter: Adapter = self.server.adapter
        body = None
        if method == "POST":
            length = self.headers.get("Content-Length")
            if not length or not length.isdigit():
                self._respond(411, error_body(411, "a Content-Length header is required"), started)
                return
            if int(length) > adapter.config.max_body_bytes:
                self._respond(
                    413,
                    error_body(
                        413, f"the request body is {length} bytes, over the limit of {adapter.config.max_body_bytes}"
                    ),
                    started,
                )
                return
            raw = self.rfile.read(int(length))
            try:
                body = json.loads(raw) if raw else {}
            except ValueError as err:
                self._respond(400, error_body(400, f"the request body is not JSON: {err}"), started)
                return
        try:
            status, payload = adapter.handle(method, self.path, body)
        except Exception as err:  # an unexpected bug answers 500 and the worker lives on
            LOG.exception("unexpected error on %s %s", method, self.path)
            status, payload = 500, error_body(500, f"{type(err).__name__}: {err}")
        self._respond(status, payload, started)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")


BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d"
    b"\r\n\r\n%s"
)


class PoolServer(socketserver.TCPServer):
    """A TCP server whose connections are served by ``workers`` long-lived threads.

    Accepted connections wait in a queue of ``queue_size``; when it is full the connection is answered 503 at once,
    so a slow Triton can make requests wait or fail, but never grows the number of threads or hangs the acceptor.
    """

    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, adapter: Adapter, workers: int, queue_size: int):
        self.adapter = adapter
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._busy: queue.Queue = queue.Queue(maxsize=64)
        super().__init__(address, Handler)
        threading.Thread(target=self._refuse, name="refuse", daemon=True).start()
        self._workers = [threading.Thread(target=self._work, name=f"worker-{i}", daemon=True) for i in range(workers)]
        for worker in self._workers:
            worker.start()

    def _work(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            request, client_address = item
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    def process_request(self, request, client_address):
        try:
            self._queue.put_nowait((request, client_address))
        except queue.Full:
            LOG.error("busy: answering 503 to %s", client_address[0])
            try:
                self._busy.put_nowait(request)
            except queue.Full:  # even the refusals are backed up: just close
                self.shutdown_request(request)

    def _refuse(self):
        """Answer 503 to the connections the pool cannot take: read what the client sends (bounded), so that it
        sees the answer instead of a reset connection, answer, close."""
        body = json.dumps(error_body(503, "every worker is busy and the queue is full; retry later")).encode()
        while True:
            request = self._busy.get()
            if request is None:
                return
            try:
                request.settimeout(0.2)
                request.sendall(BUSY % (len(body), body))
                request.shutdown(socket.SHUT_WR)
                deadline, drained = time.monotonic() + 2.0, 0
                while time.monotonic() < deadline and drained < self.adapter.config.max_body_bytes:
                    chunk = request.recv(65536)
                    if not chunk:
                        break
                    drained += len(chunk)
            except OSError:
                pass
            finally:
                request.close()

    def handle_error(self, request, client_address):
        LOG.exception("error serving %s", client_address[0] if client_address else "?")

    def server_close(self):
        super().server_close()
        self._busy.put(None)
        for _worker in self._workers:
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break


def main(argv=None) -> int:
    logging.basicConfig(
        stream=sys.stdout,
        level=os.environ.get("LS_TRITON_ADAPTER_LOG_LEVEL", "INFO").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        config = Config.from_env()
    except ValueError as err:
        LOG.error("bad configuration: %s", err)
        return 2
    adapter = Adapter(config)
    family = socket.AF_INET6 if ":" in config.bind else socket.AF_INET
    PoolServer.address_family = family
    server = PoolServer((config.bind, config.port), adapter, config.workers, config.queue_size)
    LOG.info(
        "listening on %s:%d (%d workers, queue %d); Triton %s, model %s; CF Access headers %s",
        config.bind,
        server.server_address[1],
        config.workers,
        config.queue_size,
        redact_url(config.triton_url),
        config.model,
        "on" if config.cf_access_client_id else "off",
    )
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
