# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small client for Label Studio's REST API (1.23.x), standard library only.

Shared by the label_studio_* modules. Authentication follows label-studio-sdk 2.x:

* a key that is not a JWT is a legacy token, sent as ``Authorization: Token <key>``;
* a JWT with ``exp`` is a personal access token (a refresh token): it is exchanged at ``POST /api/token/refresh/``
  for a short-lived access token (5 minutes on Label Studio's defaults), sent as ``Authorization: Bearer <access>``
  and cached until its own ``exp``; a 401 on a request refreshes it once and retries the request;
* a JWT without ``exp``, or one already expired, is refused before anything is sent.

Every error answer raises ``LabelStudioError``, carrying the HTTP ``status``, ``method``, ``path``, Label Studio's
``detail`` and ``validation_errors``, and a message that says in words what failed. No answer at all raises
``LabelStudioUnreachable`` (status None). Neither the token nor a request body ever appears in a message.
"""

import base64
import http.client
import json
import re
import socket
import ssl
import time
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import HTTPSHandler, ProxyHandler, Request, build_opener

from ansible.module_utils.basic import env_fallback

TOKEN_LEGACY = "legacy token"
TOKEN_PAT = "personal access token"

PAGE_SIZE = 100
_TAG = re.compile(r"</?a\b[^>]*>")
# Refresh the access token this many seconds before its exp (clock skew, a slow request).
_ACCESS_TOKEN_MARGIN = 15.0
# Answers worth a second try (rate limit, a proxy in front of a restarting server); with a pause before each.
_RETRY_STATUSES = (429, 502, 503, 504)
_RETRY_PAUSES = (0.5, 1.5)

LABEL_STUDIO_COMMON_ARGUMENT_SPEC = {
    "url": {"type": "str", "required": True, "fallback": ("env_fallback", ["LABEL_STUDIO_URL"])},
    "api_token": {
        "type": "str",
        "required": True,
        "no_log": True,
        "fallback": ("env_fallback", ["LABEL_STUDIO_API_KEY"]),
    },
    "request_timeout": {"type": "float", "default": 30.0},
    "validate_certs": {"type": "bool", "default": True},
}


def label_studio_argument_spec():
    """A fresh copy of the shared connection options, with the env fallbacks resolved for AnsibleModule."""
    spec = {}
    for name, option in LABEL_STUDIO_COMMON_ARGUMENT_SPEC.items():
        option = dict(option)
        if "fallback" in option:
            option["fallback"] = (env_fallback, option["fallback"][1])
        spec[name] = option
    return spec


class LabelStudioError(Exception):
    """An error answer from Label Studio, or (``unreachable``) no answer at all."""

    unreachable = False

    def __init__(self, message, status=None, method=None, path=None, detail=None, validation_errors=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail
        self.validation_errors = validation_errors or {}

    def __str__(self):
        return self.message


class LabelStudioUnreachable(LabelStudioError):
    """No HTTP answer: connection refused, timeout, name resolution, TLS or a dropped connection."""

    unreachable = True


def validate_url(url):
    """Return an error text for a Label Studio URL this client cannot use, or None."""
    if not isinstance(url, str) or not url:
        return "url must be a non-empty string such as http://127.0.0.1:8080"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        return "url %r is not a valid URL: %s" % (url, exc)
    if port == 0:
        return "url %r has port 0" % url
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "url %r must be http:// or https:// with a host name, for example http://127.0.0.1:8080" % url
    if parts.query or parts.fragment:
        return "url %r must not have a query or a fragment" % url
    return None


# -- tokens --------------------------------------------------------------------------------------------------


def _jwt_claims(token):
    """The claims of a JWT (signature not checked), or None when ``token`` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return None
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8"))
    except (ValueError, UnicodeError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def detect_token_kind(token, now=None):
    """TOKEN_LEGACY or TOKEN_PAT, the way label-studio-sdk decides; ValueError for a JWT that cannot work."""
    if not isinstance(token, str) or not token.strip():
        raise ValueError("api_token is empty")
    claims = _jwt_claims(token.strip())
    if claims is None:
        return TOKEN_LEGACY
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise ValueError("api_token is a JWT without an expiry (exp): not a personal access token Label Studio issues")
    if exp <= (time.time() if now is None else now):
        raise ValueError("api_token is a personal access token that expired at %s (UTC)" % _utc(exp))
    if claims.get("token_type") not in (None, "refresh"):
        raise ValueError(
            "api_token is a JWT of type %r; use the personal access token (a refresh token) from the account page"
            % claims.get("token_type")
        )
    return TOKEN_PAT


def _utc(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


# -- errors --------------------------------------------------------------------------------------------------


def _parse_error_body(raw):
    """(detail, validation_errors, text) from Label Studio's error envelope, tolerating other bodies."""
    text = (raw or b"").decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        detail = data.get("detail")
        errors = data.get("validation_errors")
        if not isinstance(errors, dict):
            # DRF's bare field dict (no envelope): {"field": ["msg"]}
            errors = {k: v for k, v in data.items() if isinstance(v, list) and k != "detail"} if detail is None else {}
        return (detail if isinstance(detail, str) else None), errors, text
    return None, {}, text


def _messages(value):
    if isinstance(value, list):
        return "; ".join(_messages(item) for item in value)
    if isinstance(value, dict):
        return "; ".join("%s: %s" % (k, _messages(v)) for k, v in value.items())
    return str(value)


def format_validation_errors(errors):
    """``field: message; message`` for each field, ``non_field_errors`` first and without a field name."""
    parts = []
    for field in sorted(errors, key=lambda f: (f != "non_field_errors", f)):
        text = _messages(errors[field])
        parts.append(text if field == "non_field_errors" else "%s: %s" % (field, text))
    return " | ".join(parts)


def describe_error(status, method, where, detail, validation_errors, text, token_kind):
    """The message of a LabelStudioError: what failed, in words, then Label Studio's own reason."""
    reason = detail or ""
    if validation_errors:
        formatted = format_validation_errors(validation_errors)
        reason = formatted if not reason or reason == "Validation error" else "%s: %s" % (reason, formatted)
    if not reason:
        reason = text[:500] if text else "(empty body)"
    reason = _TAG.sub("", reason)  # Label Studio puts HTML links into some messages
    head = "Label Studio %s %s answered HTTP %s" % (method, where, status)
    if status == 401:
        what = "the API token (detected as a %s) was refused" % token_kind
        if token_kind == TOKEN_LEGACY and "legacy" in reason.lower():
            what += " (legacy tokens work only where the organization enables them; use a personal access token)"
        return "%s: %s: %s" % (head, what, reason)
    if status == 403:
        if "reserved network address" in reason or "ssrf" in reason.lower():
            return (
                "%s: blocked by Label Studio's SSRF protection (the URL resolves to a local or private address; "
                "the server allows those only with ML_BLOCK_LOCAL_IP=false / SSRF_PROTECTION_ENABLED=false): %s"
                % (head, reason)
            )
        return "%s: not permitted for this token's user: %s" % (head, reason)
    if status == 404:
        return "%s: not found: %s" % (head, reason)
    if status == 400:
        return "%s: Label Studio rejected the request: %s" % (head, reason)
    if status >= 500:
        return "%s: server error: %s" % (head, reason)
    return "%s: %s" % (head, reason)


def _transport_message(exc):
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


# -- the client ----------------------------------------------------------------------------------------------


class LabelStudioClient:
    """Label Studio's API at ``url`` with ``token`` (legacy or personal access token).

    ``opener`` and ``clock``/``sleep`` are for tests (a fake HTTP layer and time).
    """

    def __init__(self, url, token, timeout=30.0, validate_certs=True, opener=None, clock=time.time, sleep=time.sleep):
        problem = validate_url(url)
        if problem:
            raise ValueError(problem)
        self.url = url.rstrip("/")
        self._clock = clock
        self._sleep = sleep
        self._token = token.strip() if isinstance(token, str) else token
        self.token_kind = detect_token_kind(self._token, now=clock())
        self.timeout = float(timeout)
        self._access = None
        self._access_exp = 0.0
        if opener is None:
            handlers = []
            if urlsplit(self.url).scheme == "https":
                context = ssl.create_default_context()
                if not validate_certs:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                handlers.append(HTTPSHandler(context=context))
            opener = build_opener(*handlers) if handlers else build_opener(ProxyHandler())
        self._opener = opener

    # -- transport ---------------------------------------------------------------------------------------

    def _scrub(self, text):
        for secret in (self._token, self._access):
            if secret and isinstance(text, str):
                text = text.replace(secret, "********")
        return text

    def _send(self, method, path, body, authorization):
        """One HTTP exchange: (status, raw body). Transport failures raise LabelStudioUnreachable."""
        headers = {"Accept": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = Request(self.url + path, data=data, headers=headers)
        req.get_method = lambda: method
        try:
            resp = self._opener.open(req, timeout=self.timeout)
            try:
                return resp.getcode(), resp.read()
            finally:
                resp.close()
        except HTTPError as exc:
            try:
                raw = exc.read()
            except Exception:  # pylint: disable=broad-except  # body lost: the status is what counts
                raw = b""
            return exc.code, raw
        except (URLError, socket.timeout, OSError, http.client.HTTPException, ssl.SSLError, ValueError) as exc:
            raise LabelStudioUnreachable(
                self._scrub(
                    "Label Studio %s %s%s: no answer: %s"
                    % (method, self.url, path.split("?")[0], _transport_message(exc))
                ),
                method=method,
                path=path,
            )

    def _error(self, status, method, path, raw):
        detail, errors, text = _parse_error_body(raw)
        where = self.url + path.split("?")[0]
        message = describe_error(status, method, where, detail, errors, text, self.token_kind)
        return LabelStudioError(
            self._scrub(message),
            status=status,
            method=method,
            path=path,
            detail=self._scrub(detail),
            validation_errors=errors,
        )

    def _refresh_access_token(self):
        status, raw = self._send("POST", "/api/token/refresh/", {"refresh": self._token}, None)
        if status != 200:
            raise self._error(status, "POST", "/api/token/refresh/", raw)
        try:
            access = json.loads(raw.decode("utf-8"))["access"]
        except (ValueError, KeyError, TypeError, UnicodeError):
            raise LabelStudioError(
                "Label Studio POST %s/api/token/refresh/ answered 200 without an access token" % self.url,
                status=status,
                method="POST",
                path="/api/token/refresh/",
            )
        claims = _jwt_claims(access) or {}
        exp = claims.get("exp")
        self._access = access
        # Without a readable exp, assume Label Studio's default lifetime (5 minutes).
        self._access_exp = float(exp) if isinstance(exp, (int, float)) else self._clock() + 300.0
        return access

    def _authorization(self, force_refresh=False):
        if self.token_kind == TOKEN_LEGACY:
            return "Token %s" % self._token
        if force_refresh or self._access is None or self._clock() >= self._access_exp - _ACCESS_TOKEN_MARGIN:
            self._refresh_access_token()
        return "Bearer %s" % self._access

    def request(self, method, path, body=None, query=None, expect=(200, 201, 204)):
        """Send a request; return the parsed JSON (None for an empty body) for a status in ``expect``."""
        if query:
            path = "%s?%s" % (path, urlencode(query))
        refreshed = False
        attempt = 0
        while True:
            status, raw = self._send(method, path, body, self._authorization())
            if status == 401 and self.token_kind == TOKEN_PAT and not refreshed:
                refreshed = True  # the access token expired early or was revoked: one new one, one more try
                self._authorization(force_refresh=True)
                continue
            if status in _RETRY_STATUSES and attempt < len(_RETRY_PAUSES):
                self._sleep(_RETRY_PAUSES[attempt])
                attempt += 1
                continue
            break
        if status not in expect:
            raise self._error(status, method, path, raw)
        text = (raw or b"").decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    # -- projects ----------------------------------------------------------------------------------------

    def list_projects(self, title=None):
        """Every project (all pages), optionally narrowed by Label Studio's substring ``title`` filter."""
        projects = []
        page = 1
        while True:
            query = {"page": page, "page_size": PAGE_SIZE}
            if title:
                query["title"] = title
            try:
                data = self.request("GET", "/api/projects/", query=query)
            except LabelStudioError as exc:
                if exc.status == 404 and page > 1:
                    break  # DRF answers 404 for a page past the end (the count changed under us)
                raise
            if isinstance(data, list):  # not paginated (never in 1.23, but cheap to accept)
                return projects + data
            results = (data or {}).get("results") or []
            projects.extend(results)
            if not data.get("next") or not results:
                break
            page += 1
        return projects

    def find_projects(self, title):
        """The projects whose title is exactly ``title`` (Label Studio's filter is a case-insensitive substring)."""
        return [p for p in self.list_projects(title=title) if p.get("title") == title]

    def get_project(self, project_id):
        return self.request("GET", "/api/projects/%d/" % int(project_id))

    def create_project(self, fields):
        return self.request("POST", "/api/projects/", body=fields, expect=(201, 200))

    def update_project(self, project_id, fields):
        return self.request("PATCH", "/api/projects/%d/" % int(project_id), body=fields)

    def delete_project(self, project_id):
        self.request("DELETE", "/api/projects/%d/" % int(project_id), expect=(204, 200))

    def validate_label_config(self, label_config):
        """POST /api/projects/validate/; raises LabelStudioError (400 with the reason) for a bad config."""
        return self.request("POST", "/api/projects/validate/", body={"label_config": label_config})

    def resolve_project(self, project):
        """A project dict from an id (int or digits) or an exact, unique title; LabelStudioError otherwise."""
        if isinstance(project, int) or (isinstance(project, str) and project.strip().isdigit()):
            return self.get_project(int(project))
        matches = self.find_projects(project)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise LabelStudioError(
                "Label Studio at %s has no project titled %r" % (self.url, project), status=404, path="/api/projects/"
            )
        raise LabelStudioError(
            "Label Studio at %s has %d projects titled %r (ids %s); name the project by id"
            % (self.url, len(matches), project, ", ".join(str(p.get("id")) for p in matches)),
            status=409,
            path="/api/projects/",
        )

    # -- ML backends -------------------------------------------------------------------------------------

    def list_ml_backends(self, project_id):
        return self.request("GET", "/api/ml/", query={"project": int(project_id)}) or []

    def create_ml_backend(self, fields):
        return self.request("POST", "/api/ml/", body=fields, expect=(201, 200))

    def update_ml_backend(self, backend_id, fields):
        # Label Studio re-validates the backend on update and needs url and project in the body (else HTTP 500).
        return self.request("PATCH", "/api/ml/%d" % int(backend_id), body=fields)

    def delete_ml_backend(self, backend_id):
        self.request("DELETE", "/api/ml/%d" % int(backend_id), expect=(204, 200))

    # -- webhooks ----------------------------------------------------------------------------------------

    def list_webhooks(self, project_id):
        return self.request("GET", "/api/webhooks/", query={"project": int(project_id)}) or []

    def create_webhook(self, fields):
        return self.request("POST", "/api/webhooks/", body=fields, expect=(201, 200))

    def update_webhook(self, webhook_id, fields):
        # Always the full object: an update without actions empties the action list.
        return self.request("PATCH", "/api/webhooks/%d/" % int(webhook_id), body=fields)

    def delete_webhook(self, webhook_id):
        self.request("DELETE", "/api/webhooks/%d/" % int(webhook_id), expect=(204, 200))

    def webhook_actions(self):
        """``{ACTION: {"name", "description", "organization-only", ...}}`` from /api/webhooks/info/."""
        return self.request("GET", "/api/webhooks/info/") or {}
