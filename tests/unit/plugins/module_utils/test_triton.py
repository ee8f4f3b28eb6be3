# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""TritonClient against a canned HTTP server on loopback: requests sent, answers read, errors mapped.

The index assessment and ModelWaiter (module_utils/triton_readiness.py) are tested in test_triton_readiness.py.
"""

from __future__ import annotations

import base64
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import triton
from ansible_collections.oceanid.fleet.plugins.module_utils.triton import (
    TritonClient,
    TritonError,
    TritonUnreachable,
    triton_argument_spec,
    validate_url,
)


class CannedServer:
    """Answers each request from ``routes[(method, path)] = (status, body bytes or JSON value)``; records requests."""

    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.routes: dict[tuple[str, str], tuple[int, object]] = {}
        self.requests: list[dict] = []
        self.delay = 0.0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {key.lower(): value for key, value in self.headers.items()}  # case-insensitive
                server.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": headers,
                        "body": json.loads(raw) if raw else None,
                    }
                )
                if server.delay:
                    time.sleep(server.delay)
                status, body = server.routes.get((self.command, self.path), (404, {"error": "Not Found"}))
                data = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    if data and not isinstance(body, bytes):
                        self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            do_GET = do_POST = _answer

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls_context is not None:
            self.httpd.socket = tls_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    canned = CannedServer()
    yield canned
    canned.close()


@pytest.fixture
def client(server):
    return TritonClient(server.url(), timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- health -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, expected", [(200, True), (400, False)])
def test_live_reads_200_and_400(server, client, status, expected):
    server.routes[("GET", "/v2/health/live")] = (status, None)
    assert client.live() is expected


def test_live_raises_for_other_answers_with_tritons_message(server, client):
    server.routes[("GET", "/v2/health/live")] = (403, {"error": "This API is restricted, expecting header 'X-Key'"})
    with pytest.raises(TritonError) as err:
        client.live()
    assert err.value.status == 403
    assert err.value.message == "This API is restricted, expecting header 'X-Key'"
    assert not err.value.unreachable
    assert str(err.value) == "HTTP 403: This API is restricted, expecting header 'X-Key'"


@pytest.mark.parametrize("status, expected", [(200, True), (400, False), (503, False)])
def test_server_ready(server, client, status, expected):
    server.routes[("GET", "/v2/health/ready")] = (status, None if status != 503 else {"error": "Server exiting"})
    assert client.server_ready() is expected


# -- index ------------------------------------------------------------------------------------------


def test_index_posts_and_returns_the_list(server, client):
    entries = [
        {"name": "never"},
        {"name": "m", "version": "1", "state": "READY"},
        {"name": "m", "version": "2", "state": "UNAVAILABLE", "reason": "unloaded"},
    ]
    server.routes[("POST", "/v2/repository/index")] = (200, entries)
    assert client.index() == entries
    assert client.index(ready=True) == entries
    assert [r["method"] for r in server.requests] == ["POST", "POST"]
    assert server.requests[0]["body"] == {}
    assert server.requests[1]["body"] == {"ready": True}
    assert server.requests[1]["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize("body", [{"models": []}, [1, 2], ["m"], "text"])
def test_index_rejects_what_is_not_a_list_of_models(server, client, body):
    server.routes[("POST", "/v2/repository/index")] = (200, body if body != "text" else b"text")
    with pytest.raises(TritonError, match="unexpected repository index"):
        client.index()


def test_index_empty_body_is_an_empty_list(server, client):
    server.routes[("POST", "/v2/repository/index")] = (200, None)
    assert client.index() == []


# -- models -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, expected", [(200, True), (400, False), (404, False), (503, False)])
def test_model_ready_statuses(server, client, status, expected):
    server.routes[("GET", "/v2/models/m/versions/2/ready")] = (status, None)
    assert client.model_ready("m", "2") is expected


def test_model_ready_other_status_raises(server, client):
    server.routes[("GET", "/v2/models/m/ready")] = (500, {"error": "boom"})
    with pytest.raises(TritonError, match="boom"):
        client.model_ready("m")


def test_names_are_quoted_as_one_path_segment(server, client):
    server.routes[("GET", "/v2/models/a%20b%2Fc%3F/versions/3/ready")] = (200, None)
    server.routes[("POST", "/v2/repository/models/a%20b%2Fc%3F/load")] = (200, None)
    assert client.model_ready("a b/c?", 3) is True
    client.load("a b/c?")
    assert server.requests[-1]["path"] == "/v2/repository/models/a%20b%2Fc%3F/load"


def test_model_config_and_metadata(server, client):
    server.routes[("GET", "/v2/models/m/config")] = (200, {"name": "m", "max_batch_size": 8})
    server.routes[("GET", "/v2/models/m/versions/1")] = (200, {"name": "m", "versions": ["1"]})
    assert client.model_config("m") == {"name": "m", "max_batch_size": 8}
    assert client.model_metadata("m", "1")["versions"] == ["1"]


def test_load_sends_config_as_a_json_string_and_files_base64(server, client):
    server.routes[("POST", "/v2/repository/models/m/load")] = (200, None)
    client.load("m")
    client.load("m", config={"max_batch_size": 4})
    client.load("m", config='{"backend": "python"}', files={"1/model.py": b"print(1)", "file:1/x.txt": "x"})
    bodies = [r["body"] for r in server.requests]
    assert bodies[0] is None or bodies[0] == {}
    assert bodies[1] == {"parameters": {"config": '{"max_batch_size": 4}'}}
    params = bodies[2]["parameters"]
    assert params["config"] == '{"backend": "python"}'
    assert base64.b64decode(params["file:1/model.py"]) == b"print(1)"
    assert base64.b64decode(params["file:1/x.txt"]) == b"x"


def test_load_files_need_a_config(client):
    with pytest.raises(ValueError, match="config override"):
        client.load("m", files={"1/model.py": b""})


def test_load_failure_carries_tritons_reason(server, client):
    reason = "load failed for model 'm': version 1 is at UNAVAILABLE state: Internal: ModuleNotFoundError: x;\n"
    server.routes[("POST", "/v2/repository/models/m/load")] = (400, {"error": reason})
    with pytest.raises(TritonError) as err:
        client.load("m")
    assert err.value.status == 400
    assert err.value.message == reason
    assert not err.value.not_explicit_mode


def test_load_in_none_or_poll_mode_is_recognised(server, client):
    server.routes[("POST", "/v2/repository/models/m/load")] = (
        503,
        {"error": "explicit model load / unload is not allowed if polling is enabled"},
    )
    with pytest.raises(TritonError) as err:
        client.load("m")
    assert err.value.not_explicit_mode


def test_unload_body(server, client):
    server.routes[("POST", "/v2/repository/models/m/unload")] = (200, None)
    client.unload("m")
    client.unload("m", unload_dependents=True)
    assert [r["body"] for r in server.requests] == [
        {"parameters": {"unload_dependents": False}},
        {"parameters": {"unload_dependents": True}},
    ]


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "500 Internal Server Error (empty body)"),
        (b"<html>bad gateway</html>", "<html>bad gateway</html>"),
        (b'{"error": "x"}', "x"),
        (b'{"other": 1}', '{"other": 1}'),
    ],
)
def test_error_message_forms(server, client, body, message):
    server.routes[("GET", "/v2/models/m/config")] = (500, body)
    with pytest.raises(TritonError) as err:
        client.model_config("m")
    assert err.value.message == message
    assert err.value.status == 500


def test_connection_refused_is_unreachable():
    client = TritonClient("http://127.0.0.1:%d" % free_port(), timeout=2)
    with pytest.raises(TritonUnreachable) as err:
        client.live()
    assert err.value.unreachable and err.value.status is None
    assert "refused" in err.value.message.lower()
    assert isinstance(err.value, TritonError)


def test_timeout_is_unreachable(server):
    server.delay = 1.0
    client = TritonClient(server.url(), timeout=0.2)
    started = time.monotonic()
    with pytest.raises(TritonUnreachable, match="timed out"):
        client.live()
    assert time.monotonic() - started < 0.9


def test_name_resolution_failure_is_unreachable(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(TritonUnreachable, match="Name or service not known"):
        TritonClient("http://triton.invalid:8000").live()


def test_connection_dropped_is_unreachable():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def accept_and_close():
        conn, _addr = listener.accept()
        conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    try:
        with pytest.raises(TritonUnreachable):
            TritonClient("http://127.0.0.1:%d" % listener.getsockname()[1], timeout=2).live()
    finally:
        thread.join(2)
        listener.close()


# -- options ----------------------------------------------------------------------------------------


def test_headers_go_with_every_request(server):
    client = TritonClient(server.url(), headers={"CF-Access-Client-Id": "id", "CF-Access-Client-Secret": "s3cret"})
    server.routes[("GET", "/v2/health/live")] = (200, None)
    server.routes[("POST", "/v2/repository/index")] = (200, [])
    client.live()
    client.index()
    for request in server.requests:
        assert request["headers"]["cf-access-client-id"] == "id"
        assert request["headers"]["cf-access-client-secret"] == "s3cret"


def test_a_path_prefix_is_kept(server):
    server.routes[("GET", "/triton/v2/health/live")] = (200, None)
    assert TritonClient(server.url() + "/triton/").live() is True


def test_proxy_environment(server, monkeypatch):
    server.routes[("GET", "/v2/health/live")] = (200, None)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:%d" % free_port())
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(TritonUnreachable):
        TritonClient(server.url(), timeout=2).live()
    assert TritonClient(server.url(), timeout=2, use_proxy=False).live() is True


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://127.0.0.1:8000", None),
        ("https://triton.example.com/prefix", None),
        ("127.0.0.1:8000", "must start with http:// or https://"),
        ("ftp://host", "must start with http:// or https://"),
        ("http://", "has no host name"),
        ("http://host:port", "not a valid URL"),
        ("http://host/?x=1", "must not have a query"),
        ("", "non-empty string"),
    ],
)
def test_validate_url(url, problem):
    result = validate_url(url)
    if problem is None:
        assert result is None
    else:
        assert problem in result
    if problem is not None:
        with pytest.raises(ValueError):
            TritonClient(url)


def test_argument_spec_is_a_fresh_copy():
    spec = triton_argument_spec()
    assert spec["headers"]["no_log"] is True
    assert spec["url"]["default"] == triton.DEFAULT_URL
    spec["url"]["default"] = "changed"
    assert triton_argument_spec()["url"]["default"] == triton.DEFAULT_URL


# -- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(tls_files):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_files)
    canned = CannedServer(tls_context=context)
    canned.routes[("GET", "/v2/health/live")] = (200, None)
    yield canned
    canned.close()


def test_https_verifies_certificates_unless_told_not_to(tls_server):
    with pytest.raises(TritonUnreachable, match="(?i)certificate"):
        TritonClient(tls_server.url("https"), timeout=5).live()
    assert TritonClient(tls_server.url("https"), timeout=5, validate_certs=False).live() is True
