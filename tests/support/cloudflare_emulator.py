# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Cloudflare API emulator for tests: an in-process threaded HTTP server that follows the contracts in
tests/support/cloudflare_specs/ (copied from the project's shared specs, ../shared/specs/cloudflare-*.json
beside the checkout).

It is an emulator, not Cloudflare: one account, one zone (``oceanid.example``), the Access service token,
Cloudflare Tunnel (cfd_tunnel), Access application/policy, zone and DNS record endpoints of the v4 API, with every
request body validated against the OpenAPI subsets (tests/support/cloudflare_schema.py) and the objects kept in
memory (tests/support/cloudflare_api.py), optionally in a JSON state file.

Reaching it:
- ``emu.url`` is a plain-HTTP base URL (``http://127.0.0.1:<port>/client/v4``) for clients that take a base URL.
- ``emu.proxy_env(directory)`` gives HTTPS_PROXY + SSL_CERT_FILE: the emulator answers ``CONNECT
  api.cloudflare.com:443`` itself and speaks TLS with a certificate for api.cloudflare.com from a throw-away test CA,
  so clients with a fixed endpoint (community.general.cloudflare_dns) reach it over verified TLS.

Test-only endpoints outside /client/v4: ``GET /__emulator__/state``, ``GET /__emulator__/access?hostname=H`` (with
the request's CF-Access-Client-Id/-Secret headers) and ``GET /__emulator__/ca.pem``.

CLI (tests spanning processes): ``python -m tests.support.cloudflare_emulator serve --state-file F --port-file F
[--bind 127.0.0.1] [--port 0] [--rate-limit-every N]``; the port file gets ``{"port", "url", "account_id",
"zone_id", "zone_name", "ca_pem"}`` (credentials are read from the state file, which is 0600).
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import secrets
import signal
import ssl
import sys
import threading
import urllib.parse
from pathlib import Path

if __package__ in (None, ""):  # pragma: no cover - `python tests/support/cloudflare_emulator.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.cloudflare_api import ALL_PERMISSIONS, ApiError, CloudflareState, envelope_error
from tests.support.cloudflare_dns import seed_record
from tests.support.cloudflare_objects import connect_tunnel
from tests.support.cloudflare_tls import TestCA

API_HOST = "api.cloudflare.com"
API_PREFIX = "/client/v4"
# community.general.cloudflare_dns does not retry a 429: the zone lookup and DNS record paths are exempt from rate
# limiting unless rate_limit_dns=True.
_RATE_LIMIT_EXEMPT = re.compile(r"^/zones(/[^/]+/dns_records(/.*)?)?$")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, emulator):
        self.emulator = emulator
        super().__init__(address, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare-emulator"
    sys_version = ""
    server: _Server

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    # --- CONNECT: the emulator stands in for api.cloudflare.com:443 behind HTTPS_PROXY -------------------------
    def do_CONNECT(self):
        host, _colon, port = self.path.partition(":")
        if host.lower() != API_HOST or port not in ("443", ""):
            self._raw(502, b"the Cloudflare emulator only tunnels to api.cloudflare.com:443\n", close=True)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tls = self.server.emulator.ca.server_context().wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        self.connection = tls
        self.rfile = tls.makefile("rb", self.rbufsize)
        self.wfile = tls.makefile("wb", 0)
        self.close_connection = False

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def _raw(self, status: int, body: bytes, content_type: str = "text/plain", headers=None, close=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, document, headers=None):
        self._raw(status, json.dumps(document).encode(), "application/json", headers)

    def _dispatch(self):
        emulator: CloudflareEmulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        target = urllib.parse.urlsplit(self.path)
        path, query = target.path, urllib.parse.parse_qs(target.query, keep_blank_values=True)
        if path.startswith("/__emulator__/"):
            self._test_endpoint(path, query)
            return
        if not path.startswith(API_PREFIX + "/"):
            self._json(404, envelope_error(7003, "No route for the URI"))
            return
        api_path = path[len(API_PREFIX) :]
        status, document, headers = emulator.handle(self.command, api_path, query, raw_body, self.headers)
        self._json(status, document, headers)

    def _test_endpoint(self, path, query):
        emulator: CloudflareEmulator = self.server.emulator
        if self.command != "GET":
            self._json(405, {"error": "GET only"})
        elif path == "/__emulator__/state":
            self._json(200, emulator.state())
        elif path == "/__emulator__/ca.pem":
            self._raw(200, emulator.ca.ca_pem, "application/x-pem-file")
        elif path == "/__emulator__/access":
            hostname = (query.get("hostname") or [""])[0]
            allowed = emulator.access_allows(hostname, dict(self.headers.items()))
            self._json(200 if allowed else 403, {"hostname": hostname, "allowed": allowed})
        else:
            self._json(404, {"error": f"no test endpoint {path}"})


class CloudflareEmulator:
    """The Cloudflare API emulator (see the module docstring). Also a context manager."""

    def __init__(
        self,
        state_file: str | os.PathLike | None = None,
        rate_limit_every: int = 0,
        bind: str = "127.0.0.1",
        port: int = 0,
        rate_limit_dns: bool = False,
    ):
        self.state_file = Path(state_file) if state_file else None
        self.rate_limit_every = rate_limit_every
        self.rate_limit_dns = rate_limit_dns
        self._bind, self._port = bind, port
        self._store = CloudflareState.load(self.state_file)
        # the CA lives in the (0600) state: a restarted emulator keeps the CA its clients already trust
        self.ca = TestCA(API_HOST, self._store.data.get("tls"))
        self._store.data["tls"] = self.ca.material
        self.requests: list[dict] = []
        self._counter = 0
        self._lock = threading.RLock()
        self._server: _Server | None = None

    # --- identity ---------------------------------------------------------------------------------------------
    account_id = property(lambda self: self._store.account_id)
    zone_id = property(lambda self: self._store.zone_id)
    zone_name = property(lambda self: self._store.zone_name)
    api_token = property(lambda self: self._store.api_token)
    api_key = property(lambda self: self._store.api_key)
    api_email = property(lambda self: self._store.api_email)

    @property
    def port(self) -> int:
        assert self._server is not None, "the emulator is not started"
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self._bind in ("0.0.0.0", "") else f"http://{self._bind}:{self.port}"

    @property
    def url(self) -> str:
        return self.base + API_PREFIX

    # --- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> CloudflareEmulator:
        self._server = _serve(_Server((self._bind, self._port), _Handler, self), "cloudflare-emulator")
        return self

    def stop(self) -> None:
        self._server = _shutdown(self._server)

    def __enter__(self) -> CloudflareEmulator:
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- for tests --------------------------------------------------------------------------------------------
    def proxy_env(self, directory: str | os.PathLike) -> dict[str, str]:
        """Environment so that https://api.cloudflare.com reaches this emulator over verified TLS."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ca_file = directory / "cloudflare-emulator-ca.pem"
        ca_file.write_bytes(self.ca.ca_pem)
        proxy = self.base
        no_proxy = "127.0.0.1,localhost"
        return {
            "HTTPS_PROXY": proxy,
            "https_proxy": proxy,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
            "SSL_CERT_FILE": str(ca_file),
            "REQUESTS_CA_BUNDLE": str(ca_file),
        }

    def state(self) -> dict:
        with self._lock:
            return self._store.snapshot()

    def access_allows(self, hostname: str, headers) -> bool:
        with self._lock:
            allowed = self._store.access_allows(hostname, headers)
            self._store.save(self.state_file)  # last_seen_at of the token used
            return allowed

    def add_api_token(self, permissions: list[str]) -> str:
        """A further API token holding only ``permissions`` (see cloudflare_api.ALL_PERMISSIONS), for 403 tests."""
        unknown = set(permissions) - set(ALL_PERMISSIONS)
        if unknown:
            raise ValueError(f"unknown permissions {sorted(unknown)}; known: {ALL_PERMISSIONS}")
        token = "cfemu-scoped-" + secrets.token_urlsafe(24)
        with self._lock:
            self._store.data["scoped_tokens"][token] = sorted(permissions)
            self._store.save(self.state_file)
        return token

    def connect_tunnel(self, tunnel_id: str, client_id: str | None = None) -> dict:
        """A cloudflared connector attaches to the tunnel (what a running cloudflared would do)."""
        with self._lock:
            client = connect_tunnel(self._store, tunnel_id, client_id)
            self._store.save(self.state_file)
            return client

    def seed_dns_record(self, **fields) -> dict:
        """A DNS record that exists before the test (made by hand earlier), not through the API."""
        with self._lock:
            record = seed_record(self._store, **fields)
            self._store.save(self.state_file)
            return record

    def handle(self, method: str, path: str, query: dict, raw_body: bytes, headers) -> tuple[int, dict, dict]:
        """One /client/v4 request (path without the prefix) -> (status, JSON document, extra headers)."""
        with self._lock:
            record = {"method": method, "path": path, "query": _flat(query), "body": None, "status": 0}
            self.requests.append(record)
            try:
                if raw_body:
                    try:
                        record["body"] = json.loads(raw_body)
                    except ValueError as exc:  # choice: code 6007 (the specs give none for unparsable JSON)
                        raise ApiError(400, 6007, f"Malformed JSON in request body: {exc}") from None
                if self._rate_limited(path):  # choice: code 971 (the specs give 429 without a code)
                    record["status"] = 429
                    return (
                        429,
                        envelope_error(971, "Please wait and consider throttling your request speed"),
                        {"Retry-After": "1"},
                    )
                status, document = self._store.handle(method, path, query, raw_body, record["body"], headers)
                if method != "GET" and status < 300:
                    self._store.save(self.state_file)
            except ApiError as exc:
                status, document = exc.status, exc.document()
            record["status"] = status
            return status, document, {}

    def _rate_limited(self, path: str) -> bool:
        if not self.rate_limit_every:
            return False
        if not self.rate_limit_dns and _RATE_LIMIT_EXEMPT.match(path):
            return False
        self._counter += 1  # counts the requests that may be limited: every Nth of them gets the 429
        return self._counter % self.rate_limit_every == 0


def _serve(server, name: str):
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True).start()
    return server


def _shutdown(server) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def _flat(query: dict) -> dict:
    return {k: v[0] if len(v) == 1 else v for k, v in query.items()}


class _ForwardHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare-access-edge-emulator"
    sys_version = ""

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _forward(self):
        proxy: AccessEdgeProxy = self.server.edge  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = dict(self.headers.items())
        if not proxy.allows(headers):
            proxy.refused += 1
            page = b"Forbidden. You don't have permission to view this. (Cloudflare Access emulator)\n"
            self.send_response(403)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        proxy.forwarded += 1
        origin = urllib.parse.urlsplit(proxy.origin_url)
        conn = http.client.HTTPConnection(origin.hostname, origin.port or 80, timeout=300)
        try:
            forward = {
                k: v
                for k, v in headers.items()
                if k.lower() not in ("host", "connection", "keep-alive", "proxy-connection")
            }
            forward["Host"] = proxy.hostname
            path = (origin.path.rstrip("/") + self.path) if origin.path not in ("", "/") else self.path
            conn.request(self.command, path, body=body or None, headers=forward)
            response = conn.getresponse()
            data = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length", "keep-alive"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError as exc:
            page = f"origin unreachable: {exc}\n".encode()
            self.send_response(502)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
        finally:
            conn.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class AccessEdgeProxy:
    """A forwarding HTTP proxy standing in for Cloudflare Access at the edge (an emulator too): requests that the
    emulated Access apps/policies/service tokens admit for ``hostname`` go to ``origin_url``; others get 403."""

    def __init__(self, origin_url: str, emulator_or_url, hostname: str):
        self.origin_url = origin_url
        self.emulator = emulator_or_url
        self.hostname = hostname
        self.forwarded = 0
        self.refused = 0
        self._server = None

    def allows(self, headers: dict) -> bool:
        if isinstance(self.emulator, CloudflareEmulator):
            return self.emulator.access_allows(self.hostname, headers)
        base = str(self.emulator)
        base = base[: -len(API_PREFIX)] if base.endswith(API_PREFIX) else base.rstrip("/")
        target = urllib.parse.urlsplit(base)
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            wanted = {k: v for k, v in headers.items() if k.lower().startswith("cf-access-")}
            conn.request(
                "GET", "/__emulator__/access?" + urllib.parse.urlencode({"hostname": self.hostname}), headers=wanted
            )
            response = conn.getresponse()
            response.read()
            return response.status == 200
        finally:
            conn.close()

    @property
    def url(self) -> str:
        assert self._server is not None, "the proxy is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AccessEdgeProxy:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ForwardHandler)
        server.daemon_threads = True
        server.edge = self  # type: ignore[attr-defined]
        self._server = _serve(server, "access-edge-emulator")
        return self

    def stop(self) -> None:
        self._server = _shutdown(self._server)

    def __enter__(self) -> AccessEdgeProxy:
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def _write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.cloudflare_emulator")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the emulator until SIGTERM/SIGINT")
    serve.add_argument("--state-file", required=True)
    serve.add_argument("--port-file", required=True)
    serve.add_argument("--bind", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--rate-limit-every", type=int, default=0)
    args = parser.parse_args(argv)
    emulator = CloudflareEmulator(
        state_file=args.state_file, rate_limit_every=args.rate_limit_every, bind=args.bind, port=args.port
    )
    emulator._store.save(emulator.state_file)  # pylint: disable=protected-access
    emulator.start()
    port_file = Path(args.port_file)
    ca_file = port_file.with_name(port_file.name + ".ca.pem")
    ca_file.write_bytes(emulator.ca.ca_pem)
    info = {
        "port": emulator.port,
        "url": emulator.url,
        "base": emulator.base,
        "account_id": emulator.account_id,
        "zone_id": emulator.zone_id,
        "zone_name": emulator.zone_name,
        "ca_pem": str(ca_file),
    }
    _write_atomic(port_file, json.dumps(info, indent=2) + "\n", 0o644)
    print(f"cloudflare emulator listening on {emulator.base} (state {args.state_file})", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
