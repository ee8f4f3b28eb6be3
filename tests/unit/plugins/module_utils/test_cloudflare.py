# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CloudflareClient with a fake transport: auth headers, envelopes, error quoting, 429 retry, pagination.

One test sends real HTTP through ansible.module_utils.urls to a canned loopback server; the modules run against
the Cloudflare emulator in tests/integration/cloudflare.
"""

from __future__ import annotations

import ast
import email.utils
import http.server
import json
import socket
import threading
import time
from pathlib import Path
from urllib.error import URLError
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import cloudflare
from ansible_collections.oceanid.fleet.plugins.module_utils.cloudflare import (
    DEFAULT_API_BASE_URL,
    CloudflareClient,
    CloudflareError,
    auth_problem,
    client_from_module,
    cloudflare_argument_spec,
    go_duration_ns,
    one_by_name,
    same_duration,
    scope_prefix,
)


def envelope(result=None, success=True, errors=(), result_info=None):
    doc = {"success": success, "errors": list(errors), "messages": [], "result": result}
    if result_info is not None:
        doc["result_info"] = result_info
    return json.dumps(doc).encode()


class FakeTransport:
    """Answers from a queue of (status, headers, body); records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def __call__(self, method, url, headers, data, timeout, validate_certs):
        parts = urlsplit(url)
        self.requests.append(
            {
                "method": method,
                "url": url,
                "path": parts.path,
                "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                "headers": dict(headers),
                "body": json.loads(data) if data else None,
                "timeout": timeout,
                "validate_certs": validate_certs,
            }
        )
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def make(*answers, **kwargs):
    transport = FakeTransport(*answers)
    slept = []
    kwargs.setdefault("api_token", "tok-123")
    client = CloudflareClient(transport=transport, sleep=slept.append, **kwargs)
    return client, transport, slept


RATE_LIMITED = envelope(success=False, errors=[{"code": 10000, "message": "Rate limited"}])


# -- authentication ---------------------------------------------------------------------------------


def test_api_token_is_sent_as_bearer_and_nothing_else():
    client, transport, _slept = make((200, {}, envelope({"id": "x"})))
    assert client.request("GET", "/user/tokens/verify") == {"id": "x"}
    headers = transport.requests[0]["headers"]
    assert headers["Authorization"] == "Bearer tok-123"
    assert "X-Auth-Key" not in headers and "X-Auth-Email" not in headers
    assert transport.requests[0]["url"] == DEFAULT_API_BASE_URL + "/user/tokens/verify"


def test_key_and_email_are_sent_as_x_auth_headers():
    client, transport, _slept = make((200, {}, envelope([])), api_token=None, api_key="k", api_email="ops@example.com")
    client.request("GET", "/accounts/a/access/service_tokens")
    headers = transport.requests[0]["headers"]
    assert headers["X-Auth-Key"] == "k" and headers["X-Auth-Email"] == "ops@example.com"
    assert "Authorization" not in headers
    assert client.auth_style == "api_key"


@pytest.mark.parametrize(
    ("token", "key", "email", "expected"),
    [
        (None, None, None, "no Cloudflare credentials: set api_token (or CLOUDFLARE_API_TOKEN), or api_key"),
        (None, "k", None, "api_key needs api_email"),
        (None, None, "e@x", "api_key (or CLOUDFLARE_API_KEY) is missing"),
        ("t", "k", None, "not both: api_token and api_key are set"),
        ("t", "k", "e@x", "not both: api_token and api_key and api_email are set"),
        ("t", None, None, None),
        (None, "k", "e@x", None),
    ],
)
def test_auth_problems_name_what_is_missing(token, key, email, expected):
    problem = auth_problem(token, key, email)
    if expected is None:
        assert problem is None
    else:
        assert expected in problem


def test_the_client_refuses_incomplete_credentials_and_bad_urls():
    with pytest.raises(ValueError, match="api_key needs api_email"):
        CloudflareClient(api_key="k")
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        CloudflareClient(api_token="t", base_url="ftp://api.cloudflare.com/client/v4")
    with pytest.raises(ValueError, match="must not have a query"):
        CloudflareClient(api_token="t", base_url="https://api.cloudflare.com/client/v4?x=1")


# -- envelopes and errors ---------------------------------------------------------------------------


def test_body_query_and_trailing_slash():
    client, transport, _slept = make((201, {}, envelope({"id": "n"})), base_url="http://127.0.0.1:9/client/v4/")
    client.request("POST", "/accounts/a/x", body={"name": "n"}, query={"exact": True, "skip": None, "page": 2})
    sent = transport.requests[0]
    assert sent["path"] == "/client/v4/accounts/a/x"
    assert sent["query"] == {"exact": "true", "page": "2"}
    assert sent["body"] == {"name": "n"} and sent["headers"]["Content-Type"] == "application/json"


def test_error_quotes_method_path_status_and_every_code_and_message():
    body = envelope(
        success=False,
        errors=[
            {
                "code": 7003,
                "message": "Could not route to /accounts/nope/access/service_tokens, perhaps your object identifier is invalid?",
            },
            {"code": 7000, "message": "No route for that URI", "source": {"pointer": "/account_id"}},
        ],
    )
    client, _transport, _slept = make((404, {"Content-Type": "application/json"}, body))
    with pytest.raises(CloudflareError) as caught:
        client.request("GET", "/accounts/nope/access/service_tokens")
    text = str(caught.value)
    assert text.startswith(
        "Cloudflare API GET /accounts/nope/access/service_tokens failed: HTTP 404; 7003 Could not route"
    )
    assert "7000 No route for that URI (at /account_id)" in text
    assert caught.value.status == 404 and caught.value.codes == [7003, 7000]
    assert "tok-123" not in text


def test_error_chain_entries_are_quoted():
    body = envelope(
        success=False,
        errors=[
            {
                "code": 1004,
                "message": "DNS Validation Error",
                "error_chain": [{"code": 9005, "message": "Content for CNAME record is invalid."}],
            }
        ],
    )
    client, _transport, _slept = make((400, {}, body))
    with pytest.raises(
        CloudflareError, match=r"1004 DNS Validation Error \[error_chain: 9005 Content for CNAME record is invalid\.\]"
    ):
        client.request("POST", "/zones/z/dns_records", body={"type": "CNAME"})


def test_success_false_with_status_200_is_an_error():
    client, _transport, _slept = make((200, {}, envelope(success=False, errors=[{"code": 1001, "message": "odd"}])))
    with pytest.raises(CloudflareError, match="HTTP 200; 1001 odd"):
        client.request("GET", "/x")


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (
            502,
            {"Content-Type": "text/html"},
            b"<html><body>Bad gateway</body></html>",
            "HTTP 502; the answer is not JSON (text/html): '<html><body>Bad gateway</body></html>'",
        ),
        (200, {}, b"", "HTTP 200; the answer has an empty body"),
        (200, {}, b'{"result": 1}', "HTTP 200; the answer is not a Cloudflare v4 envelope (no 'success' field)"),
        (403, {}, b"[1, 2]", "HTTP 403; the answer is not a Cloudflare v4 envelope"),
    ],
)
def test_answers_that_are_not_envelopes(status, headers, body, expected):
    client, _transport, _slept = make((status, headers, body))
    with pytest.raises(CloudflareError) as caught:
        client.request("POST", "/accounts/a/access/apps", body={"name": "x"})
    assert expected in str(caught.value)


def test_long_non_json_bodies_are_shortened():
    client, _transport, _slept = make((500, {"Content-Type": "text/plain"}, b"x" * 5000))
    with pytest.raises(CloudflareError) as caught:
        client.request("POST", "/x")
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (URLError(ConnectionRefusedError(111, "Connection refused")), "Connection refused"),
        (URLError(TimeoutError("timed out")), "timed out"),
        (ConnectionResetError(104, "Connection reset by peer"), "Connection reset by peer"),
        (URLError(socket.gaierror(-2, "Name or service not known")), "Name or service not known"),
    ],
)
def test_connection_failures_name_the_api_and_the_reason(exc, expected):
    client, _transport, slept = make(exc)
    with pytest.raises(CloudflareError) as caught:
        client.request("GET", "/accounts/a/cfd_tunnel")
    text = str(caught.value)
    assert (
        "Cloudflare API GET /accounts/a/cfd_tunnel failed: no answer from https://api.cloudflare.com/client/v4" in text
    )
    assert expected in text and caught.value.status is None
    assert slept == []


# -- 429 and retries --------------------------------------------------------------------------------


def test_429_is_retried_after_the_seconds_retry_after_asks_for():
    client, transport, slept = make(
        (429, {"Retry-After": "3"}, RATE_LIMITED),
        (429, {"Retry-After": "1"}, RATE_LIMITED),
        (201, {}, envelope({"id": "n"})),
    )
    assert client.request("POST", "/accounts/a/access/service_tokens", body={"name": "n"}) == {"id": "n"}
    assert slept == [3.0, 1.0]
    assert len(transport.requests) == 3 and all(r["body"] == {"name": "n"} for r in transport.requests)
    assert client.waited == 4.0


def test_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    client, _transport, slept = make((429, {"retry-after": when}, RATE_LIMITED), (200, {}, envelope([])))
    client.request("GET", "/x")
    assert len(slept) == 1 and 3.0 <= slept[0] <= 5.0


def test_without_retry_after_the_backoff_doubles_and_is_capped():
    answers = [(429, {}, RATE_LIMITED)] * 5 + [(200, {}, envelope("ok"))]
    client, _transport, slept = make(*answers, max_wait=5)
    assert client.request("GET", "/x") == "ok"
    assert slept == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_gives_up_after_max_retries_with_a_clear_message():
    answers = [(429, {"Retry-After": "1"}, RATE_LIMITED)] * 4
    client, transport, slept = make(*answers, max_retries=3)
    with pytest.raises(CloudflareError) as caught:
        client.request("PUT", "/accounts/a/cfd_tunnel/t/configurations", body={"config": {}})
    text = str(caught.value)
    assert "Cloudflare API PUT /accounts/a/cfd_tunnel/t/configurations failed: HTTP 429; 10000 Rate limited" in text
    assert "gave up after 4 attempts (3.0 s waited in all); the API still answers 429 Too Many Requests" in text
    assert slept == [1.0, 1.0, 1.0] and len(transport.requests) == 4


def test_a_retry_after_longer_than_the_cap_is_not_cut_short():
    client, transport, slept = make((429, {"Retry-After": "300"}, RATE_LIMITED), max_wait=60)
    with pytest.raises(CloudflareError, match="Retry-After asks for 300 s, longer than the 60 s this client waits"):
        client.request("GET", "/x")
    assert slept == [] and len(transport.requests) == 1


def test_5xx_is_retried_for_get_only():
    client, transport, slept = make(
        (503, {}, envelope(success=False, errors=[{"code": 10001, "message": "busy"}])), (200, {}, envelope([]))
    )
    client.request("GET", "/x")
    assert slept == [1.0] and len(transport.requests) == 2
    client, transport, slept = make((503, {}, envelope(success=False, errors=[{"code": 10001, "message": "busy"}])))
    with pytest.raises(CloudflareError, match="HTTP 503; 10001 busy"):
        client.request("POST", "/x", body={})
    assert slept == [] and len(transport.requests) == 1


def test_other_4xx_are_not_retried():
    client, transport, slept = make(
        (403, {}, envelope(success=False, errors=[{"code": 10000, "message": "Authentication error"}]))
    )
    with pytest.raises(CloudflareError, match="HTTP 403; 10000 Authentication error"):
        client.request("GET", "/x")
    assert slept == [] and len(transport.requests) == 1


# -- pagination -------------------------------------------------------------------------------------


def page(items, page_no, per_page, total_pages=None, total_count=None):
    info = {"page": page_no, "per_page": per_page, "count": len(items)}
    if total_pages is not None:
        info["total_pages"] = total_pages
    if total_count is not None:
        info["total_count"] = total_count
    return (200, {}, envelope(items, result_info=info))


def test_list_all_follows_total_pages():
    client, transport, _slept = make(
        page([1, 2], 1, 2, total_pages=3), page([3, 4], 2, 2, total_pages=3), page([5], 3, 2, total_pages=3)
    )
    assert client.list_all("/accounts/a/access/apps", per_page=2) == [1, 2, 3, 4, 5]
    assert [r["query"] for r in transport.requests] == [
        {"page": "1", "per_page": "2"},
        {"page": "2", "per_page": "2"},
        {"page": "3", "per_page": "2"},
    ]


def test_list_all_without_total_pages_uses_total_count_then_a_short_page():
    client, transport, _slept = make(page([1, 2], 1, 2, total_count=3), page([3], 2, 2, total_count=3))
    assert client.list_all("/x", per_page=2) == [1, 2, 3]
    client, transport, _slept = make(page([1, 2], 1, 2), page([3], 2, 2))
    assert client.list_all("/x", per_page=2, query={"name": "n"}) == [1, 2, 3]
    assert transport.requests[1]["query"] == {"name": "n", "page": "2", "per_page": "2"}


def test_list_all_stops_on_an_empty_page_and_retries_a_429_in_between():
    client, transport, slept = make(page([1, 2], 1, 2), (429, {"Retry-After": "1"}, RATE_LIMITED), page([], 2, 2))
    assert client.list_all("/x", per_page=2) == [1, 2]
    assert slept == [1.0] and len(transport.requests) == 3


def test_list_all_refuses_a_result_that_is_not_a_list():
    client, _transport, _slept = make((200, {}, envelope({"id": 1})))
    with pytest.raises(CloudflareError, match="expected a list result, got dict"):
        client.list_all("/x")


# -- helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("8760h", 8760 * 3600 * 10**9),
        ("2h45m", (2 * 3600 + 45 * 60) * 10**9),
        ("300ms", 300 * 10**6),
        ("1.5h", 5400 * 10**9),
        ("0", 0),
        ("30d", None),
        ("", None),
        ("h", None),
        ("1h 2m", None),
        ("forever", None),
    ],
)
def test_go_durations(text, ns):
    assert go_duration_ns(text) == ns


def test_same_duration_compares_lengths():
    assert same_duration("24h", "1440m") and same_duration("forever", "forever")
    assert not same_duration("24h", "25h") and not same_duration("forever", "8760h")


def test_scope_prefix_and_unique_names():
    assert scope_prefix(account_id="a b") == "/accounts/a%20b"
    assert scope_prefix(zone_id="z") == "/zones/z"
    with pytest.raises(ValueError):
        scope_prefix("a", "z")
    items = [{"id": "1", "name": "x"}, {"id": "2", "name": "y"}, {"id": "3", "name": "y"}]
    assert one_by_name(items, "x", "tokens", "account a")["id"] == "1"
    assert one_by_name(items, "z", "tokens", "account a") is None
    with pytest.raises(ValueError, match=r"2 tokens are named 'y' in account a \(ids 2, 3\)"):
        one_by_name(items, "y", "tokens", "account a")


def test_argument_spec_marks_secrets_no_log_and_reads_the_environment():
    spec = cloudflare_argument_spec()
    assert spec["api_token"]["no_log"] and spec["api_key"]["no_log"]
    assert spec["api_token"]["fallback"][1] == ["CLOUDFLARE_API_TOKEN"]
    assert spec["api_key"]["fallback"][1] == ["CLOUDFLARE_API_KEY"]
    assert spec["api_email"]["fallback"][1] == ["CLOUDFLARE_EMAIL"]
    assert spec["api_base_url"]["default"] == DEFAULT_API_BASE_URL
    assert spec is not cloudflare_argument_spec()


class FakeModule:
    def __init__(self, **params):
        self.params = dict(
            api_token=None,
            api_key=None,
            api_email=None,
            api_base_url=DEFAULT_API_BASE_URL,
            request_timeout=30.0,
            validate_certs=True,
        )
        self.params.update(params)

    def fail_json(self, msg, **kwargs):
        raise AssertionError(msg)


def test_client_from_module_fails_naming_the_missing_auth():
    with pytest.raises(AssertionError, match="no Cloudflare credentials"):
        client_from_module(FakeModule())
    with pytest.raises(AssertionError, match="api_key needs api_email"):
        client_from_module(FakeModule(api_key="k"))
    with pytest.raises(AssertionError, match="request_timeout must be a positive number"):
        client_from_module(FakeModule(api_token="t", request_timeout=0))
    client = client_from_module(
        FakeModule(api_key="k", api_email="e@x", api_base_url="http://127.0.0.1:1/client/v4", validate_certs=False)
    )
    assert (
        client.auth_style == "api_key"
        and client.base_url == "http://127.0.0.1:1/client/v4"
        and client.validate_certs is False
    )


# -- the real transport -----------------------------------------------------------------------------


class _Canned(http.server.BaseHTTPRequestHandler):
    answers: list = []
    seen: list = []

    def log_message(self, *args):
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append((self.command, self.path, dict(self.headers), body))
        status, headers, payload = self.answers.pop(0)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


def test_urls_transport_reads_error_bodies_and_retry_after(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Canned.seen = []
        _Canned.answers = [
            (429, {"Retry-After": "0", "Content-Type": "application/json"}, RATE_LIMITED),
            (201, {"Content-Type": "application/json"}, envelope({"id": "n"})),
            (
                403,
                {"Content-Type": "application/json"},
                envelope(success=False, errors=[{"code": 10000, "message": "Authentication error"}]),
            ),
        ]
        slept = []
        client = CloudflareClient(
            api_token="tok", base_url="http://127.0.0.1:%d/client/v4" % server.server_port, sleep=slept.append
        )
        assert client.request("POST", "/accounts/a/access/service_tokens", body={"name": "n"}) == {"id": "n"}
        assert slept == [0.0]
        with pytest.raises(CloudflareError, match="HTTP 403; 10000 Authentication error"):
            client.request("DELETE", "/accounts/a/access/service_tokens/n")
        methods = [(m, p) for m, p, _headers, _body in _Canned.seen]
        assert methods == [
            ("POST", "/client/v4/accounts/a/access/service_tokens"),
            ("POST", "/client/v4/accounts/a/access/service_tokens"),
            ("DELETE", "/client/v4/accounts/a/access/service_tokens/n"),
        ]
        assert _Canned.seen[0][2]["Authorization"] == "Bearer tok"
        assert json.loads(_Canned.seen[1][3]) == {"name": "n"}
    finally:
        server.shutdown()
        server.server_close()


def test_urls_transport_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = CloudflareClient(api_token="tok", base_url="http://127.0.0.1:%d/client/v4" % port, timeout=5)
    with pytest.raises(CloudflareError, match="no answer from http://127.0.0.1:%d/client/v4: .*refused" % port):
        client.request("GET", "/x")


def test_module_utils_stays_python38_compatible():
    source = Path(cloudflare.__file__).read_text(encoding="utf-8")
    ast.parse(source, cloudflare.__file__, feature_version=(3, 8))
