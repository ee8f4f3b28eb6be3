# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small client for the Cloudflare v4 API, shared by the collection's Cloudflare modules.

Standard library plus ``ansible.module_utils.urls`` (so ``HTTPS_PROXY``/``NO_PROXY`` and the CA bundle
named by ``SSL_CERT_FILE`` apply, like in every other Ansible module). Python 3.8 compatible.

* Authentication: an API token (``Authorization: Bearer``) or the global API key with its e-mail
  (``X-Auth-Key`` + ``X-Auth-Email``), never both.
* ``request()`` unwraps the v4 envelope ``{success, errors, messages, result[, result_info]}`` and
  returns ``result``; ``list_all()`` follows ``result_info`` page by page.
* A 429 is retried, honouring ``Retry-After`` (seconds or an HTTP date) and otherwise backing off
  exponentially, each wait capped at ``max_wait`` seconds; a ``Retry-After`` longer than the cap is not
  cut short: the call gives up at once and says so. 502/503/504 are retried for GET only (a POST may
  already have taken effect).
* Every failure raises ``CloudflareError``, whose text quotes the method, the path, the HTTP status and
  every ``errors[]`` code and message (with ``error_chain`` entries when present). Request bodies and
  headers are never quoted, so no credential or secret reaches a message.
"""

import email.utils
import json
import re
import socket
import ssl
import time
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import Request

DEFAULT_API_BASE_URL = "https://api.cloudflare.com/client/v4"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_MAX_WAIT = 60.0
USER_AGENT = "oceanid.fleet-cloudflare"

# Statuses retried for idempotent reads only; 429 is retried for every method (nothing was done).
_RETRY_GET_STATUSES = (502, 503, 504)
_MAX_PAGES = 10000
_BODY_EXCERPT = 200


def cloudflare_argument_spec():
    """A fresh copy of the shared connection options (documented in the oceanid.fleet.cloudflare fragment)."""
    return {
        "api_token": {"type": "str", "no_log": True, "fallback": (env_fallback, ["CLOUDFLARE_API_TOKEN"])},
        "api_key": {"type": "str", "no_log": True, "fallback": (env_fallback, ["CLOUDFLARE_API_KEY"])},
        "api_email": {"type": "str", "fallback": (env_fallback, ["CLOUDFLARE_EMAIL"])},
        "api_base_url": {"type": "str", "default": DEFAULT_API_BASE_URL},
        "request_timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
        "validate_certs": {"type": "bool", "default": True},
    }


def quote_segment(value):
    """One URL path segment (an id or a name)."""
    return quote(str(value), safe="")


class CloudflareError(Exception):
    """A failed Cloudflare API call.

    ``status`` is the HTTP status (None when no HTTP answer came), ``errors`` the envelope's
    ``errors[]`` list as sent, ``codes`` their codes (handy for tests and callers that branch on them).
    """

    def __init__(self, method, path, status=None, errors=None, detail=None):
        self.method = method
        self.path = path
        self.status = status
        self.errors = list(errors or [])
        self.detail = detail
        super().__init__(self._text())

    @property
    def codes(self):
        return [e.get("code") for e in self.errors if isinstance(e, dict)]

    def _text(self):
        where = "Cloudflare API %s %s" % (self.method, self.path)
        parts = []
        if self.status is not None:
            parts.append("HTTP %s" % self.status)
        quoted = format_errors(self.errors)
        if quoted:
            parts.append(quoted)
        if self.detail:
            parts.append(self.detail)
        return "%s failed: %s" % (where, "; ".join(parts) if parts else "no details")

    def __str__(self):
        return self._text()


def _format_one(err):
    if not isinstance(err, dict):
        return str(err)
    code = err.get("code")
    message = err.get("message", "")
    text = "%s %s" % (code, message) if code is not None else str(message)
    pointer = (err.get("source") or {}).get("pointer") if isinstance(err.get("source"), dict) else None
    if pointer:
        text += " (at %s)" % pointer
    chain = err.get("error_chain")
    if isinstance(chain, list) and chain:
        text += " [error_chain: %s]" % "; ".join(_format_one(c) for c in chain)
    return text


def format_errors(errors):
    """'code message' for every entry of an errors[] list, error_chain entries nested in brackets."""
    return "; ".join(_format_one(e) for e in errors or [])


def _retry_after_seconds(value, now=None):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _transport_message(exc):
    reason = getattr(exc, "reason", None) if isinstance(exc, URLError) else exc
    if reason is None:
        reason = exc
    if isinstance(reason, socket.timeout) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, ssl.SSLError):
        return "TLS error: %s" % reason
    return str(reason) or reason.__class__.__name__


def _header(headers, name):
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    value = getter(name)
    if value is None and isinstance(headers, dict):
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return value


def urls_transport(method, url, headers, data, timeout, validate_certs):
    """Send one request with ansible.module_utils.urls; return (status, headers, body bytes).

    An HTTP error status is an answer, not an exception; no answer at all raises OSError/URLError.
    """
    req = Request(
        headers=headers,
        use_proxy=True,
        timeout=timeout,
        validate_certs=validate_certs,
        http_agent=USER_AGENT,
        follow_redirects="none",
        use_netrc=False,
    )
    try:
        resp = req.open(method, url, data=data)
    except HTTPError as exc:
        try:
            raw = exc.read()
        except Exception:  # pylint: disable=broad-except  # body lost: status and headers still count
            raw = b""
        return exc.code, exc.headers, raw
    try:
        return resp.getcode(), resp.headers, resp.read()
    finally:
        resp.close()


class CloudflareClient:
    """The Cloudflare v4 API at ``base_url`` with one of the two authentication styles.

    ``transport(method, url, headers, data, timeout, validate_certs) -> (status, headers, body)`` and
    ``sleep(seconds)`` are injectable for unit tests.
    """

    def __init__(
        self,
        api_token=None,
        api_key=None,
        api_email=None,
        base_url=DEFAULT_API_BASE_URL,
        timeout=DEFAULT_TIMEOUT,
        validate_certs=True,
        max_retries=DEFAULT_MAX_RETRIES,
        max_wait=DEFAULT_MAX_WAIT,
        transport=None,
        sleep=None,
    ):
        problem = auth_problem(api_token, api_key, api_email)
        if problem:
            raise ValueError(problem)
        problem = validate_base_url(base_url)
        if problem:
            raise ValueError(problem)
        self.base_url = base_url.rstrip("/")
        self._auth = {"Authorization": "Bearer %s" % api_token} if api_token else {}
        if not api_token:
            self._auth = {"X-Auth-Key": api_key, "X-Auth-Email": api_email}
        self.auth_style = "api_token" if api_token else "api_key"
        self.timeout = float(timeout)
        self.validate_certs = validate_certs
        self.max_retries = int(max_retries)
        self.max_wait = float(max_wait)
        self._transport = transport or urls_transport
        self._sleep = sleep or time.sleep
        self.waited = 0.0  # seconds slept on 429/5xx answers over the client's life

    # -- transport ----------------------------------------------------------------------------------

    def _url(self, path, query):
        if not path.startswith("/"):
            path = "/" + path
        url = self.base_url + path
        if query:
            items = []
            for key, value in query.items():
                if value is None:
                    continue
                if isinstance(value, bool):
                    value = "true" if value else "false"
                items.append((key, value))
            if items:
                url += "?" + urlencode(items)
        return url

    def request_envelope(self, method, path, body=None, query=None):
        """One API call; return the whole decoded envelope of a successful answer."""
        method = method.upper()
        url = self._url(path, query)
        headers = dict(self._auth)
        headers["Accept"] = "application/json"
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                status, resp_headers, raw = self._transport(
                    method, url, headers, data, self.timeout, self.validate_certs
                )
            except (URLError, OSError, ssl.SSLError, ValueError) as exc:
                raise CloudflareError(
                    method,
                    path,
                    detail="no answer from %s: %s" % (self.base_url, _transport_message(exc)),
                ) from None
            retryable = status == 429 or (method == "GET" and status in _RETRY_GET_STATUSES)
            if not retryable:
                return self._decode(method, path, status, resp_headers, raw)
            retry_after = _retry_after_seconds(_header(resp_headers, "Retry-After"))
            if attempt >= self.max_retries:
                raise CloudflareError(
                    method,
                    path,
                    status,
                    self._errors_of(raw),
                    detail="gave up after %d attempts (%.1f s waited in all); the API still answers %s"
                    % (attempt + 1, self.waited, "429 Too Many Requests" if status == 429 else status),
                )
            if retry_after is not None and retry_after > self.max_wait:
                raise CloudflareError(
                    method,
                    path,
                    status,
                    self._errors_of(raw),
                    detail="Retry-After asks for %.0f s, longer than the %.0f s this client waits; try again later"
                    % (retry_after, self.max_wait),
                )
            wait = retry_after if retry_after is not None else min(self.max_wait, float(2**attempt))
            self._sleep(wait)
            self.waited += wait
            attempt += 1

    @staticmethod
    def _errors_of(raw):
        try:
            data = json.loads((raw or b"").decode("utf-8"))
        except ValueError:
            return []
        if isinstance(data, dict) and isinstance(data.get("errors"), list):
            return data["errors"]
        return []

    def _decode(self, method, path, status, headers, raw):
        text = (raw or b"").decode("utf-8", "replace")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
            ctype = _header(headers, "Content-Type") or "no Content-Type"
            excerpt = " ".join(text.split())[:_BODY_EXCERPT]
            raise CloudflareError(
                method, path, status, detail="the answer is not JSON (%s): %r" % (ctype, excerpt)
            ) from None
        if not isinstance(data, dict) or "success" not in data:
            if data is None:
                detail = "the answer has an empty body"
            else:
                detail = "the answer is not a Cloudflare v4 envelope (no 'success' field)"
            raise CloudflareError(method, path, status, detail=detail)
        errors = data.get("errors") if isinstance(data.get("errors"), list) else []
        if data.get("success") is not True or not 200 <= status < 300:
            raise CloudflareError(method, path, status, errors, detail=None if errors else "success is false")
        return data

    def request(self, method, path, body=None, query=None):
        """One API call; return the envelope's ``result``."""
        return self.request_envelope(method, path, body=body, query=query).get("result")

    def list_all(self, path, query=None, per_page=50):
        """Every item of a paginated list (``page``/``per_page``, stopping by ``result_info``)."""
        items = []
        page = 1
        while page <= _MAX_PAGES:
            q = dict(query or {})
            q["page"] = page
            q["per_page"] = per_page
            envelope = self.request_envelope("GET", path, query=q)
            result = envelope.get("result")
            if result is None:
                result = []
            if not isinstance(result, list):
                raise CloudflareError("GET", path, 200, detail="expected a list result, got %s" % type(result).__name__)
            items.extend(result)
            info = envelope.get("result_info") or {}
            total_pages = info.get("total_pages")
            total_count = info.get("total_count")
            if not result:
                break
            if total_pages is not None:
                if page >= int(total_pages):
                    break
            elif total_count is not None:
                if len(items) >= int(total_count):
                    break
            elif len(result) < per_page:
                break
            page += 1
        return items


def auth_problem(api_token, api_key, api_email):
    """An error text when the credentials are not exactly one complete style, else None."""
    if api_token and (api_key or api_email):
        given = [n for n, v in (("api_key", api_key), ("api_email", api_email)) if v]
        return (
            "give either api_token (CLOUDFLARE_API_TOKEN) or api_key with api_email (CLOUDFLARE_API_KEY, "
            "CLOUDFLARE_EMAIL), not both: api_token and %s are set (options or environment)" % " and ".join(given)
        )
    if api_token:
        return None
    if api_key and api_email:
        return None
    if api_key:
        return "api_key needs api_email (or CLOUDFLARE_EMAIL): the global API key is sent with the account's e-mail"
    if api_email:
        return "api_email is set but api_key (or CLOUDFLARE_API_KEY) is missing"
    return (
        "no Cloudflare credentials: set api_token (or CLOUDFLARE_API_TOKEN), or api_key and api_email "
        "(or CLOUDFLARE_API_KEY and CLOUDFLARE_EMAIL)"
    )


def validate_base_url(url):
    """An error text for an API base URL this client cannot use, else None."""
    if not isinstance(url, str) or not url:
        return "api_base_url must be a non-empty URL such as %s" % DEFAULT_API_BASE_URL
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a bad port
    except ValueError as exc:
        return "api_base_url %r is not a valid URL: %s" % (url, exc)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "api_base_url %r must be an http:// or https:// URL such as %s" % (url, DEFAULT_API_BASE_URL)
    if parts.query or parts.fragment:
        return "api_base_url %r must not have a query or a fragment" % url
    return None


def client_from_module(module, **kwargs):
    """A CloudflareClient from the module's cloudflare_argument_spec() options; fail_json on bad ones."""
    p = module.params
    problem = auth_problem(p.get("api_token"), p.get("api_key"), p.get("api_email")) or validate_base_url(
        p.get("api_base_url")
    )
    if problem:
        module.fail_json(msg=problem)
    if p.get("request_timeout") is not None and p["request_timeout"] <= 0:
        module.fail_json(msg="request_timeout must be a positive number of seconds, got %s" % p["request_timeout"])
    return CloudflareClient(
        api_token=p.get("api_token"),
        api_key=p.get("api_key"),
        api_email=p.get("api_email"),
        base_url=p.get("api_base_url") or DEFAULT_API_BASE_URL,
        timeout=p.get("request_timeout") or DEFAULT_TIMEOUT,
        validate_certs=p.get("validate_certs", True),
        **kwargs,
    )


def run_module(module, run, validate=None, label=""):
    """The main() of a Cloudflare module after AnsibleModule: check the arguments with ``validate(params)`` (a list
    of error texts), make the client, ``run(module, client)`` and exit with its result; a CloudflareError or a
    ValueError fails the task with ``label`` before its text (and the HTTP status and error codes)."""
    errors = validate(module.params) if validate else []
    if errors:
        module.fail_json(msg="; ".join(errors))
    client = client_from_module(module)
    try:
        result = run(module, client)
    except CloudflareError as exc:
        module.fail_json(msg="%s%s" % (label, exc), status=exc.status, codes=exc.codes)
    except ValueError as exc:
        module.fail_json(msg="%s%s" % (label, exc))
    module.exit_json(**result)


# -- helpers shared by the modules -----------------------------------------------------------------

_GO_DURATION_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_GO_DURATION_UNITS["h"] = 3600 * 10**9
_GO_DURATION_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def go_duration_ns(text):
    """Nanoseconds of a Go duration string ('8760h', '2h45m', '300ms'); None when it is not one.

    Days are not a Go unit, so '30d' is None. 'forever' is not a duration either: callers handle it.
    """
    if not isinstance(text, str) or not text:
        return None
    if text == "0":
        return 0
    pos, total = 0, 0.0
    for match in _GO_DURATION_RE.finditer(text):
        if match.start() != pos or match.group(1) in ("", "."):
            return None
        total += float(match.group(1)) * _GO_DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        return None
    return int(total)


def same_duration(a, b):
    """Whether two Go duration strings (or 'forever') mean the same length; plain comparison otherwise."""
    if a == b:
        return True
    na, nb = go_duration_ns(a), go_duration_ns(b)
    return na is not None and na == nb


def scope_prefix(account_id=None, zone_id=None):
    """'/accounts/<id>' or '/zones/<id>' for exactly one of the two (ValueError otherwise)."""
    if bool(account_id) == bool(zone_id):
        raise ValueError("exactly one of account_id and zone_id is needed")
    if account_id:
        return "/accounts/%s" % quote_segment(account_id)
    return "/zones/%s" % quote_segment(zone_id)


def scope_text(account_id=None, zone_id=None):
    return "account %s" % account_id if account_id else "zone %s" % zone_id


def one_by_name(items, name, what, where):
    """The single item named exactly ``name`` (None when none); ValueError naming the ids when several."""
    found = [i for i in items if isinstance(i, dict) and i.get("name") == name]
    if len(found) > 1:
        raise ValueError(
            "%d %s are named %r in %s (ids %s); names must be unique for this module to know which one "
            "to manage: delete or rename the extra ones"
            % (len(found), what, name, where, ", ".join(str(i.get("id")) for i in found))
        )
    return found[0] if found else None
