# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small client for NVIDIA Triton's KServe v2 HTTP API, standard library only.

Shared by the collection's Triton modules and the model puller. Every call is one HTTP request, so
callers decide how to poll (``triton_readiness.py`` beside this file assesses the repository index and
waits for models). Errors:

* ``TritonError``: the server answered with a status other than the one the call expects; carries the
  HTTP ``status`` and Triton's ``{"error": ...}`` message (``message``), verbatim.
* ``TritonUnreachable`` (a ``TritonError`` with ``status`` None and ``unreachable`` True): no HTTP answer
  at all: connection refused, timeout, DNS failure, TLS failure, connection reset.

Health and readiness calls return booleans for Triton's documented "no" answers (400 for health,
400/404/503 for model readiness) and raise for anything else, so a wrong header (403) or a proxy error
is reported instead of being read as "not ready".
"""

import base64
import http.client
import json
import socket
import ssl
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit
from urllib.request import HTTPSHandler, ProxyHandler, Request, build_opener

# Index states (POST /v2/repository/index).
READY = "READY"
LOADING = "LOADING"
UNLOADING = "UNLOADING"
UNAVAILABLE = "UNAVAILABLE"
UNKNOWN = "UNKNOWN"
# The reason Triton gives for a version that was unloaded on request (not a failure).
REASON_UNLOADED = "unloaded"

# What Triton answers (503) to load/unload when it is not in explicit model-control mode; it says
# "polling" in NONE mode too.
_POLLING_MESSAGE = "polling is enabled"

DEFAULT_URL = "http://127.0.0.1:8000"

# Connection options shared by the Triton modules (documented in the oceanid.fleet.triton doc fragment).
TRITON_COMMON_ARGUMENT_SPEC = {
    "url": {"type": "str", "default": DEFAULT_URL},
    "headers": {"type": "dict", "default": {}, "no_log": True},
    "validate_certs": {"type": "bool", "default": True},
}


def triton_argument_spec():
    """A fresh copy of the shared connection options, to extend with a module's own."""
    return {name: dict(spec) for name, spec in TRITON_COMMON_ARGUMENT_SPEC.items()}


class TritonError(Exception):
    """An error answer from Triton, or (``unreachable``) no answer at all."""

    unreachable = False

    def __init__(self, message, status=None, url=None, method=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.method = method

    @property
    def not_explicit_mode(self):
        """True for the 503 Triton answers to load/unload when model control mode is none or poll."""
        return self.status == 503 and _POLLING_MESSAGE in (self.message or "")

    def __str__(self):
        if self.status is None:
            return self.message
        return "HTTP %s: %s" % (self.status, self.message)


class TritonUnreachable(TritonError):
    """No HTTP answer: connection refused, timeout, name resolution, TLS or a dropped connection."""

    unreachable = True


def validate_url(url):
    """Return an error text for a server URL this client cannot use, or None."""
    if not isinstance(url, str) or not url:
        return "url must be a non-empty string such as %s" % DEFAULT_URL
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        return "url %r is not a valid URL: %s" % (url, exc)
    if parts.scheme not in ("http", "https"):
        return "url %r must start with http:// or https://, for example %s" % (url, DEFAULT_URL)
    if not parts.hostname:
        return "url %r has no host name" % url
    if port == 0:
        return "url %r has port 0" % url
    if parts.query or parts.fragment:
        return "url %r must not have a query or a fragment" % url
    return None


def quote_name(name):
    """A model name (or version) as one URL path segment (Triton matches [^/]+ and decodes it)."""
    return quote(str(name), safe="")


def _model_path(name, version=None):
    path = "/v2/models/%s" % quote_name(name)
    if version is not None and version != "":
        path += "/versions/%s" % quote_name(version)
    return path


def _error_message(raw, status, reason):
    """Triton's {"error": "..."} message verbatim, else the body (shortened), else the reason phrase."""
    text = (raw or b"").decode("utf-8", "replace").strip()
    if not text:
        return ("%s %s" % (status, reason or "")).strip() + " (empty body)"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    return text[:2000]


def _transport_message(exc):
    """A short text for a transport failure (URLError wraps the socket error in .reason)."""
    reason = getattr(exc, "reason", None) if isinstance(exc, URLError) else exc
    if reason is None:
        reason = exc
    if isinstance(reason, socket.timeout) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, ssl.SSLError):
        return "TLS error: %s" % reason
    text = str(reason) or reason.__class__.__name__
    if isinstance(reason, socket.gaierror):
        return "name resolution failed: %s" % text
    return text


class TritonClient:
    """Triton's HTTP API at ``url`` (``http://host:port`` or ``https://...``, optionally with a path prefix).

    ``headers`` go with every request (e.g. Cloudflare Access service-token headers); ``timeout`` is the
    default per-request timeout in seconds; ``validate_certs`` applies to https; ``use_proxy`` follows the
    ``*_proxy`` environment variables like urllib does (off: always connect directly).
    """

    def __init__(self, url, headers=None, timeout=10.0, validate_certs=True, use_proxy=True):
        problem = validate_url(url)
        if problem:
            raise ValueError(problem)
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.validate_certs = validate_certs
        handlers = []
        if not use_proxy:
            handlers.append(ProxyHandler({}))
        if urlsplit(self.url).scheme == "https":
            context = ssl.create_default_context()
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            handlers.append(HTTPSHandler(context=context))
        self._opener = build_opener(*handlers)

    # -- transport ----------------------------------------------------------------------------------

    def request(self, method, path, body=None, timeout=None, expect=(200,)):
        """Send one request; return ``(status, parsed JSON or None)`` for a status in ``expect``.

        Any other status raises TritonError with Triton's message; no answer raises TritonUnreachable.
        """
        url = self.url + path
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = Request(url, data=data, headers=headers)
        req.get_method = lambda: method
        try:
            resp = self._opener.open(req, timeout=self.timeout if timeout is None else timeout)
            try:
                status, raw = resp.getcode(), resp.read()
            finally:
                resp.close()
        except HTTPError as exc:
            try:
                raw = exc.read()
            except Exception:  # pylint: disable=broad-except  # body lost: the status is what counts
                raw = b""
            status = exc.code
            if status not in expect:
                raise TritonError(
                    _error_message(raw, status, getattr(exc, "reason", "")), status=status, url=url, method=method
                )
        except (URLError, socket.timeout, OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
            # ValueError: e.g. a header value with a newline; reported like the other "no answer" cases.
            raise TritonUnreachable(_transport_message(exc), url=url, method=method)
        if status not in expect:
            raise TritonError(_error_message(raw, status, ""), status=status, url=url, method=method)
        if not raw:
            return status, None
        try:
            return status, json.loads(raw.decode("utf-8"))
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    # -- health -------------------------------------------------------------------------------------

    def live(self, timeout=None):
        """GET /v2/health/live: True (200) or False (400); other answers raise TritonError."""
        return self.request("GET", "/v2/health/live", timeout=timeout, expect=(200, 400))[0] == 200

    def server_ready(self, timeout=None):
        """GET /v2/health/ready: True (200) or False (400, or 503 while exiting).

        With Triton's default strict readiness this is False while any model loads or after any model
        failed to load; use index() or model_ready() to ask about particular models.
        """
        return self.request("GET", "/v2/health/ready", timeout=timeout, expect=(200, 400, 503))[0] == 200

    # -- models -------------------------------------------------------------------------------------

    def index(self, ready=False, timeout=None):
        """POST /v2/repository/index: a list of ``{name[, version, state, reason]}`` dicts.

        One entry per (model, version); models present on disk but never loaded have only ``name``.
        ``version`` is a string. With ``ready`` only READY entries are returned.
        """
        body = {"ready": True} if ready else {}
        result = self.request("POST", "/v2/repository/index", body=body, timeout=timeout)[1]
        if result is None:
            return []
        if not isinstance(result, list) or not all(isinstance(entry, dict) and "name" in entry for entry in result):
            raise TritonError(
                "unexpected repository index (not a list of models): %.200r" % (result,),
                status=200,
                url=self.url + "/v2/repository/index",
                method="POST",
            )
        return result

    def model_ready(self, name, version=None, timeout=None):
        """GET /v2/models/<name>[/versions/<v>]/ready: True (200) or False (400, 404, 503)."""
        path = _model_path(name, version) + "/ready"
        return self.request("GET", path, timeout=timeout, expect=(200, 400, 404, 503))[0] == 200

    def model_config(self, name, version=None, timeout=None):
        """GET /v2/models/<name>[/versions/<v>]/config: the model configuration as a dict."""
        return self.request("GET", _model_path(name, version) + "/config", timeout=timeout)[1]

    def model_metadata(self, name, version=None, timeout=None):
        """GET /v2/models/<name>[/versions/<v>]: name, versions, platform, inputs, outputs."""
        return self.request("GET", _model_path(name, version), timeout=timeout)[1]

    def load(self, name, config=None, files=None, timeout=None):
        """POST /v2/repository/models/<name>/load; returns when Triton finished loading.

        ``config``: a config override, a dict or a JSON string (sent as a JSON string, as Triton wants).
        ``files``: ``{"<version>/<file name>": bytes}`` file overrides (sent base64); Triton requires
        ``config`` with them. A failed load raises TritonError (400 with Triton's reason); a server in
        none/poll model-control mode raises one whose ``not_explicit_mode`` is True.
        """
        parameters = {}
        if config is not None:
            parameters["config"] = config if isinstance(config, str) else json.dumps(config, sort_keys=True)
        if files:
            if config is None:
                raise ValueError("Triton needs a config override together with file overrides")
            for key, content in files.items():
                key = key if key.startswith("file:") else "file:" + key
                if isinstance(content, str):
                    content = content.encode("utf-8")
                parameters[key] = base64.b64encode(content).decode("ascii")
        body = {"parameters": parameters} if parameters else {}
        self.request("POST", "/v2/repository/models/%s/load" % quote_name(name), body=body, timeout=timeout)

    def unload(self, name, unload_dependents=False, timeout=None):
        """POST /v2/repository/models/<name>/unload; Triton answers 200 for unknown models too.

        Triton unloads asynchronously: the index shows UNLOADING until in-flight requests finished.
        """
        body = {"parameters": {"unload_dependents": bool(unload_dependents)}}
        self.request("POST", "/v2/repository/models/%s/unload" % quote_name(name), body=body, timeout=timeout)
