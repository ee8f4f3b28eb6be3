# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small client for NVIDIA Triton's KServe v2 HTTP API, standard library only.

Shared by the collection's Triton modules. Every call is one HTTP request, so callers decide how to
poll. Errors:

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
import time
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


# -- the repository index: how requested models stand ------------------------------------------------
#
# Shared by oceanid.fleet.triton_model_ready and the model puller. A requested model is a dict
# {"name", "version" (a string or None), "config" (a dict or None)}; model_request() builds one.
# assess() turns the index into rows (one per version) and a status:
#
# * "ready": READY (the version asked for, or any version);
# * "waiting": LOADING, UNLOADING, on disk but never loaded, ...: may still become ready;
# * "failed": a load failed (UNAVAILABLE with Triton's reason);
# * "absent": not in the repository index at all, or a version the index does not list for a model
#   that has versions listed. Whether that is final is the caller's choice (ModelWaiter's absent_model).

NOT_IN_INDEX = "not in the repository index"
NOT_LOADED = "not loaded"
STATUS_READY = "ready"
STATUS_WAITING = "waiting"
STATUS_FAILED = "failed"
STATUS_ABSENT = "absent"

# A failure (or absence) seen while only waiting must persist this long, over two polls, before a
# ModelWaiter gives up: another client may just be reloading that model.
FAILURE_GRACE = 1.0
# Per-request timeout cap while polling (a load request may use all the remaining time).
POLL_REQUEST_TIMEOUT = 10.0


def model_request(name, version=None, config=None):
    """A requested model as assess() and ModelWaiter take it (version as Triton's string, or None)."""
    return {"name": name, "version": None if version is None else str(version), "config": config}


def index_entries(index, name):
    """(all entries of a model, those with a state)."""
    entries = [entry for entry in index if entry.get("name") == name]
    return entries, [entry for entry in entries if entry.get("state")]


def version_row(name, entry=None, version=None, reason=""):
    """One row of a result: name, version, state, reason, ready (from an index entry, or a placeholder)."""
    if entry is None:
        return {"name": name, "version": version, "state": None, "reason": reason, "ready": False}
    version = entry.get("version")
    return {
        "name": name,
        "version": None if version is None else str(version),
        "state": entry.get("state"),
        "reason": entry.get("reason") or "",
        "ready": entry.get("state") == READY,
    }


def is_failure(row):
    """UNAVAILABLE with a reason other than an unload on request: a load that failed."""
    return row["state"] == UNAVAILABLE and bool(row["reason"]) and row["reason"] != REASON_UNLOADED


def label(row, with_version=True):
    if with_version and row["version"] is not None:
        return "%s version %s" % (row["name"], row["version"])
    return row["name"]


def describe(row):
    """'name[ version v]: STATE[: reason]' or 'name: reason'."""
    if row["state"] is None:
        return "%s: %s" % (label(row), row["reason"])
    if row["reason"]:
        return "%s: %s: %s" % (label(row), row["state"], row["reason"])
    return "%s: %s" % (label(row), row["state"])


def _assessment(rows, status, problems):
    return {"rows": rows, "status": status, "problems": problems}


def assess(model, index, strict_versions=False):
    """How one requested model stands in the index.

    Returns a dict: rows (per version), status (see above), problems (texts for messages).
    strict_versions (all_models): every version must be READY, except versions unloaded on request.
    """
    name, version = model["name"], model["version"]
    entries, versioned = index_entries(index, name)
    if version is not None:
        match = [entry for entry in versioned if str(entry.get("version")) == version]
        if match:
            row = version_row(name, match[0])
            if row["ready"]:
                return _assessment([row], STATUS_READY, [])
            return _assessment([row], STATUS_FAILED if is_failure(row) else STATUS_WAITING, [describe(row)])
        if versioned:
            present = ", ".join("%s %s" % (entry.get("version"), entry.get("state")) for entry in versioned)
            row = version_row(name, version=version, reason="%s (versions listed: %s)" % (NOT_IN_INDEX, present))
            return _assessment([row], STATUS_ABSENT, [describe(row)])
        row = version_row(name, version=version, reason=NOT_LOADED if entries else NOT_IN_INDEX)
        return _assessment([row], STATUS_WAITING if entries else STATUS_ABSENT, [describe(row)])
    if not versioned:
        if not entries:
            row = version_row(name, reason=NOT_IN_INDEX)
            return _assessment([row], STATUS_ABSENT, [describe(row)])
        problem = (
            "%s: present in the repository but not loaded (in explicit model-control mode, state=loaded "
            "loads it; in none or poll mode, Triton could not read the model directory, for example a "
            "config.pbtxt it cannot parse: see the server log)" % name
        )
        return _assessment([version_row(name, reason=NOT_LOADED)], STATUS_WAITING, [problem])
    rows = [version_row(name, entry) for entry in versioned]
    failures = [row for row in rows if is_failure(row)]
    transitional = [row for row in rows if row["state"] in (LOADING, UNLOADING)]
    if strict_versions:
        pending = [row for row in rows if not row["ready"] and row["reason"] != REASON_UNLOADED]
        ready = not pending and any(row["ready"] for row in rows)
    else:
        pending = [row for row in rows if not row["ready"]]
        ready = any(row["ready"] for row in rows)
    if ready:
        return _assessment(rows, STATUS_READY, [])
    status = STATUS_FAILED if failures and not transitional else STATUS_WAITING
    return _assessment(rows, status, [describe(row) for row in (pending or rows)])


def all_models_in(index):
    """The models the server tried to load: a versioned entry, not every version unloaded on request."""
    names = []
    for entry in index:
        name = entry.get("name")
        if name in names or not entry.get("state"):
            continue
        rows = [version_row(name, e) for e in index_entries(index, name)[1]]
        if all(row["state"] == UNAVAILABLE and row["reason"] == REASON_UNLOADED for row in rows):
            continue
        names.append(name)
    return [model_request(name) for name in sorted(names)]


def serving_rows(name, index):
    """The READY rows of a model, whatever version."""
    return [row for row in assess(model_request(name), index)["rows"] if row["ready"]]


def summary(model, index):
    """One line per model for diff output."""
    rows = assess(model, index)["rows"]
    if len(rows) == 1 and rows[0]["state"] is None:
        return rows[0]["reason"]
    return ", ".join(
        "version %s %s%s" % (row["version"], row["state"], ": " + row["reason"] if row["reason"] else "")
        for row in rows
    )


def config_matches(wanted, served):
    """Every key of a config override has the served value (lists element by element; scalars as text)."""
    if isinstance(wanted, dict):
        return isinstance(served, dict) and all(
            key in served and config_matches(value, served[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(served, list)
            and len(wanted) == len(served)
            and all(config_matches(w, s) for w, s in zip(wanted, served))
        )
    return _scalar(wanted) == _scalar(served)


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- waiting for models ----------------------------------------------------------------------------------


class WaitFailed(Exception):
    """A ModelWaiter gave up: a model failed, is absent (absent_model='fail'), or the deadline passed."""


class ModelWaiter:
    """Polls one server's repository index until requested models are READY, or says why they are not.

    ``timeout`` counts from ``started`` (a time.monotonic() value; default now). ``absent_model``:
    'fail' (a model or version the index does not list fails once that holds for FAILURE_GRACE seconds,
    or at once after load requests returned) or 'wait' (it may still appear, e.g. a server in poll mode
    or a model directory still being copied); ``absent_hint`` is added to the message of that failure.
    ``rows`` holds the last assessment, one row per version.
    """

    def __init__(
        self, client, timeout, interval=0.1, started=None, absent_model="fail", strict_versions=False, absent_hint=""
    ):
        self.client = client
        self.url = client.url
        self.timeout = timeout
        self.interval = interval
        self.started = time.monotonic() if started is None else started
        self.deadline = self.started + timeout
        self.absent_model = absent_model
        self.strict_versions = strict_versions
        self.absent_hint = absent_hint
        self.live_seen = False
        self.last_error = None
        self.failing_since = {}
        self.rows = []

    # -- plumbing ------------------------------------------------------------------------------------

    def remaining(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return round(time.monotonic() - self.started, 3)

    def request_timeout(self, cap=POLL_REQUEST_TIMEOUT):
        return max(min(self.remaining(), cap), 0.5)

    def pause(self):
        delay = min(self.interval, self.remaining())
        if delay > 0:
            time.sleep(delay)

    def poll_index(self, timeout=None):
        """One poll: the index, or None (the reason is kept in last_error)."""
        timeout = self.request_timeout() if timeout is None else timeout
        try:
            if not self.live_seen:
                if not self.client.live(timeout=timeout):
                    self.last_error = TritonError(
                        "server at %s is not live yet (GET /v2/health/live answered 400)" % self.url, status=400
                    )
                    return None
                self.live_seen = True
            index = self.client.index(timeout=timeout)
        except TritonError as exc:
            if exc.unreachable:
                self.live_seen = False
            self.last_error = exc
            return None
        self.last_error = None
        return index

    def server_problem(self):
        exc = self.last_error
        if exc is None:
            return "no answer from the server at %s" % self.url
        if exc.unreachable:
            return "server not reachable at %s: %s" % (self.url, exc.message)
        if exc.status == 400 and "not live" in exc.message:
            return exc.message
        return "server at %s answered %s %s: %s" % (self.url, exc.method or "", exc.url or "", exc)

    def unknown_rows(self, models):
        """Rows for requested models when the index could not be read."""
        exc = self.last_error
        reason = "server not reachable" if exc is None or exc.unreachable else "no repository index: %s" % exc
        return [version_row(m["name"], version=m["version"], reason=reason) for m in models]

    def timed_out(self, what, assessments=None, models=()):
        head = "timed out after %s s %s" % (self.timeout, what)
        if assessments is None:
            self.rows = self.unknown_rows(models)
            return "%s: %s" % (head, self.server_problem())
        problems = [p for a in assessments if a["status"] != STATUS_READY for p in a["problems"]]
        text = "%s; not ready: %s" % (head, "; ".join(problems))
        if self.last_error is not None:
            text += " (last poll: %s)" % self.server_problem()
        return text

    def wait_for_index(self, what, models=()):
        """The index, polling until the server answers; WaitFailed at the deadline."""
        index = self.poll_index()
        while index is None:
            if self.remaining() <= 0:
                raise WaitFailed(self.timed_out(what, models=models))
            self.pause()
            index = self.poll_index()
        return index

    def assess_all(self, index, models):
        return [assess(model, index, strict_versions=self.strict_versions) for model in models]

    # -- waiting -------------------------------------------------------------------------------------

    def confirm_ready(self, models):
        """GET .../ready for each model; None when all are 200, else a text."""
        for model in models:
            try:
                if not self.client.model_ready(model["name"], model["version"], timeout=self.request_timeout()):
                    return "%s: READY in the repository index, but its ready endpoint does not answer 200" % (
                        label(version_row(model["name"], version=model["version"]))
                    )
            except TritonError as exc:
                self.last_error = exc
                if exc.unreachable:
                    self.live_seen = False
                return "%s: %s" % (model["name"], self.server_problem())
        return None

    def _final(self, assessment):
        return assessment["status"] == STATUS_FAILED or (
            assessment["status"] == STATUS_ABSENT and self.absent_model == "fail"
        )

    def stable_failures(self, assessments):
        """Final-looking models that stayed so for two polls and FAILURE_GRACE seconds."""
        now = time.monotonic()
        stable = []
        failing = {}
        for assessment in assessments:
            if not self._final(assessment):
                continue
            key = (assessment["rows"][0]["name"], tuple(assessment["problems"]))
            first, count = self.failing_since.get(key, (now, 0))
            failing[key] = (first, count + 1)
            if count + 1 >= 2 and now - first >= FAILURE_GRACE:
                stable.append(assessment)
        self.failing_since = failing
        return stable

    def failure_message(self, assessments, failed, settled_is_final=False):
        problems = [p for a in assessments if a["status"] != STATUS_READY for p in a["problems"]]
        if any(a["status"] == STATUS_FAILED for a in failed):
            verb = "failed to load"
        elif not settled_is_final and all(a["status"] == STATUS_ABSENT for a in failed):
            verb = "not in the repository index"
        else:
            verb = "will not become ready"
        text = "%s %s on %s: %s" % ("model" if len(problems) == 1 else "models", verb, self.url, "; ".join(problems))
        if verb == "not in the repository index":
            text += self.absent_hint
        return text

    def wait_ready(self, models, what, settled_is_final=False, index=None):
        """Poll until every model is ready; WaitFailed on a final state or at the deadline.

        ``models`` None: every model the server tried to load (all_models_in, read again each poll).
        settled_is_final (after load requests returned): a model that is not ready and not loading or
        unloading will not become ready by waiting, so it fails at once. Returns (index, models).
        """
        every = models is None
        assessments = None
        while True:
            if index is None:
                index = self.poll_index()
            if index is not None:
                if every:
                    models = all_models_in(index)
                assessments = self.assess_all(index, models)
                self.rows = [row for a in assessments for row in a["rows"]]
                if all(a["status"] == STATUS_READY for a in assessments):
                    problem = self.confirm_ready(models)
                    if problem is None:
                        return index, models
                    self.last_error = TritonError(problem)
                if settled_is_final:
                    failed = [
                        a
                        for a in assessments
                        if a["status"] != STATUS_READY
                        and not any(row["state"] in (LOADING, UNLOADING) for row in a["rows"])
                    ]
                else:
                    failed = self.stable_failures(assessments)
                if failed:
                    raise WaitFailed(self.failure_message(assessments, failed, settled_is_final))
            if self.remaining() <= 0:
                raise WaitFailed(self.timed_out(what, assessments, models=models or ()))
            self.pause()
            index = None
