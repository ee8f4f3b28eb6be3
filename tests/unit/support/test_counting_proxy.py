# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The counting, fault-injecting proxy of tests/support/seaweedfs.py, in front of a small in-memory upstream."""

from __future__ import annotations

import http.client
import http.server
import threading

import pytest

from tests.support.seaweedfs import CountingProxy, classify, free_ports


class _Upstream(http.server.BaseHTTPRequestHandler):
    """A toy object store: path-style /bucket/key, Range on GET, chunked bodies both ways."""

    protocol_version = "HTTP/1.1"
    objects: dict[str, bytes] = {}
    seen_hosts: list[str] = []

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _reply(self, status, body=b"", headers=None, chunked=False):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 1000):
                piece = body[start : start + 1000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        self.seen_hosts.append(self.headers["Host"])
        path, _q, query = self.path.partition("?")
        if "list-type" in query:
            self._reply(200, b"<ListBucketResult/>")
            return
        if path == "/bkt/short":  # promises more than it sends, then goes away (a killed server)
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"s" * 10)
            self.close_connection = True
            return
        body = self.objects.get(path)
        if body is None:
            self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
            return
        ranged = self.headers.get("Range")
        if ranged:
            first, last = (int(n) for n in ranged.split("=", 1)[1].split("-"))
            self._reply(206, body[first : last + 1], {"Content-Range": f"bytes {first}-{last}/{len(body)}"})
            return
        self._reply(200, body, chunked=path.endswith("chunked"))

    do_HEAD = do_GET

    def do_PUT(self):  # pylint: disable=invalid-name
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if not size:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.objects[self.path] = body
        self._reply(200, headers={"ETag": '"x"'})

    def do_POST(self):  # pylint: disable=invalid-name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(200, b"<InitiateMultipartUploadResult/>")

    def do_DELETE(self):  # pylint: disable=invalid-name
        self.objects.pop(self.path, None)
        self._reply(204)


@pytest.fixture
def upstream():
    _Upstream.objects = {
        "/bkt/big": bytes(range(256)) * 4096,
        "/bkt/small": b"hello world",
        "/bkt/chunked": b"c" * 5000,
    }
    _Upstream.seen_hosts = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream):
    with CountingProxy(f"http://127.0.0.1:{upstream.server_address[1]}", timeout=10) as running:
        yield running


def _connect(proxy):
    return http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)


def _call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, response.read(), response


@pytest.mark.parametrize(
    "method,target,headers,expected",
    [
        ("GET", "/bkt/models/m/a%20b.bin", {}, ("GET", "bkt", "models/m/a b.bin")),
        ("GET", "/bkt/k", {"Range": "bytes=0-9"}, ("RANGED_GET", "bkt", "k")),
        ("GET", "/bkt?list-type=2&prefix=models%2F", {}, ("LIST", "bkt", "")),
        ("GET", "/bkt/", {}, ("LIST", "bkt", "")),
        ("GET", "/bkt?location", {}, ("OTHER", "bkt", "")),
        ("GET", "/bkt/k?tagging", {}, ("OTHER", "bkt", "k")),
        ("HEAD", "/bkt/k", {}, ("HEAD", "bkt", "k")),
        ("PUT", "/bkt/k?partNumber=1&uploadId=u", {}, ("PUT", "bkt", "k")),
        ("POST", "/bkt/k?uploads", {}, ("POST", "bkt", "k")),
        ("DELETE", "/bkt/k", {}, ("DELETE", "bkt", "k")),
    ],
)
def test_classify(method, target, headers, expected):
    assert classify(method, target, headers)[:3] == expected


def test_counts_kinds_over_one_keep_alive_connection_and_keeps_host(proxy):
    conn = _connect(proxy)
    assert _call(conn, "GET", "/bkt/small", headers={"Host": "signed.example:1234"})[:2] == (200, b"hello world")
    assert _call(conn, "GET", "/bkt/big", headers={"Range": "bytes=10-19"})[1] == (bytes(range(256)) * 4096)[10:20]
    status, body, response = _call(conn, "HEAD", "/bkt/big")
    assert (status, body, response.getheader("Content-Length")) == (200, b"", str(256 * 4096))
    assert _call(conn, "GET", "/bkt?list-type=2")[0] == 200
    assert _call(conn, "PUT", "/bkt/new", body=b"x" * 300_000)[0] == 200
    assert _call(conn, "POST", "/bkt/new?uploads", body=b"")[0] == 200
    assert _call(conn, "GET", "/bkt/missing")[0] == 404
    sock = conn.sock
    assert sock is not None  # still the first connection: the proxy kept it alive throughout
    conn.close()
    assert _Upstream.seen_hosts[0] == "signed.example:1234"
    assert _Upstream.objects["/bkt/new"] == b"x" * 300_000
    assert proxy.counts == {"GET": 2, "RANGED_GET": 1, "HEAD": 1, "LIST": 1, "PUT": 1, "POST": 1}
    assert proxy.methods["GET"] == 4
    assert proxy.object_gets() == 3 and proxy.object_gets("big") == 1
    assert proxy.bytes_relayed("small") == 11 and proxy.bytes_relayed("big") == 10
    proxy.reset()
    assert not proxy.requests and proxy.object_gets() == 0


def test_streams_chunked_bodies_both_ways(proxy):
    conn = _connect(proxy)
    assert _call(conn, "GET", "/bkt/chunked")[1] == b"c" * 5000
    conn.putrequest("PUT", "/bkt/upload")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for piece in (b"a" * 70_000, b"b" * 5):
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    conn.send(b"0\r\n\r\n")
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert _Upstream.objects["/bkt/upload"] == b"a" * 70_000 + b"b" * 5
    assert proxy.requests[-1].request_bytes == 70_005


def test_corrupt_keys_flip_bytes_of_those_objects_only(proxy):
    proxy.corrupt_keys = {"big"}
    original = _Upstream.objects["/bkt/big"]
    conn = _connect(proxy)
    body = _call(conn, "GET", "/bkt/big")[1]
    assert len(body) == len(original) and body != original and body[1:] == original[1:]
    assert _call(conn, "GET", "/bkt/big", headers={"Range": "bytes=100-199"})[1] != original[100:200]
    assert _call(conn, "GET", "/bkt/small")[1] == b"hello world"


def test_fail_after_bytes_cuts_the_body_then_stays_down_until_healed(proxy):
    proxy.fail_after_bytes = 100_000
    conn = _connect(proxy)
    conn.request("GET", "/bkt/big")
    response = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert len(cut.value.partial) == 100_000
    assert proxy.down
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _call(_connect(proxy), "GET", "/bkt/small")
    proxy.heal()
    assert _call(_connect(proxy), "GET", "/bkt/small")[1] == b"hello world"


def test_fail_after_bytes_once_cuts_one_response(proxy):
    proxy.stay_down = False
    proxy.fail_after_bytes = 10
    with pytest.raises(http.client.IncompleteRead):
        _call(_connect(proxy), "GET", "/bkt/big")
    proxy.fail_after_bytes = None
    assert not proxy.down
    assert _call(_connect(proxy), "GET", "/bkt/small")[1] == b"hello world"


def test_on_bytes_calls_back_once(proxy):
    calls = []
    proxy.on_bytes(500_000, lambda: calls.append(proxy.object_bytes))
    conn = _connect(proxy)
    _call(conn, "GET", "/bkt/big")
    _call(conn, "GET", "/bkt/big")
    assert len(calls) == 1 and calls[0] >= 500_000


def test_upstream_down_hangs_up_without_a_response():
    (port,) = free_ports(1)  # nothing listens there
    with CountingProxy(f"http://127.0.0.1:{port}", timeout=5) as proxy:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _call(_connect(proxy), "GET", "/bkt/small")
        assert proxy.requests[0].status is None


def test_upstream_gone_mid_body_cuts_the_client_off_too(proxy):
    conn = _connect(proxy)
    conn.request("GET", "/bkt/short")
    response = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        response.read()  # at once, not after the client's read timeout
