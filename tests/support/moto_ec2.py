# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An offline EC2 API for tests and benchmarks: moto servers behind a counting, fault-injecting proxy.

``MotoEC2`` starts moto in server mode (``python -m moto.server``) as child processes, either one shared
server or one per region (as in AWS, where each region is its own endpoint: regions then answer in
parallel instead of queueing in one Python process), and a small HTTP proxy in front of them, which is
the only URL clients see (``endpoint_url``). The proxy

- routes each request by the region of its SigV4 signature (``Credential=<key>/<date>/<region>/...``);
- records every request (region, action, parameters), so tests can count API calls;
- answers chosen requests with an AWS error instead of forwarding them (``fail()``), for example
  ``InsufficientInstanceCapacity`` for RunInstances in given subnets, with the status code AWS uses.

moto is a mock of the EC2 API: it is good for the calls, filters, tags and pagination the fleet uses, not
for capacity, prices or SSH.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
# The only AMI the moto servers know (MOTO_AMIS_PATH): loading moto's ~1,300 default AMIs per region costs seconds
# at each region's first request and makes DescribeImages slow.
IMAGE_ID = "ami-0123456789abcdef0"
IMAGE = {
    "ami_id": IMAGE_ID,
    "state": "available",
    "public": True,
    "owner_id": "898082745236",
    "image_location": "amazon/Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)",
    "root_device_type": "ebs",
    "root_device_name": "/dev/sda1",
    "description": "A GPU AMI stand-in for tests",
    "image_type": "machine",
    "architecture": "x86_64",
    "name": "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) 20250101",
    "virtualization_type": "hvm",
    "hypervisor": "xen",
    "sriov": "simple",
}
_CREDENTIAL_RE = re.compile(r"Credential=[^/]+/\d+/([a-z0-9-]+)/")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "content-length",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the parent exits, so that a killed test run or
    benchmark leaves no moto server behind (no-op elsewhere)."""
    try:
        import ctypes  # pylint: disable=import-outside-toplevel

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def aws_environment() -> dict[str, str]:
    """Environment for a process that talks to the proxy: fake credentials, no real AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@dataclass
class Call:
    region: str
    action: str
    params: dict[str, str]


@dataclass
class Fault:
    action: str
    code: str
    message: str
    status: int
    params: dict[str, str] = field(default_factory=dict)
    region: str | None = None  # None: every region
    times: int | None = None  # None: every matching request

    def matches(self, call: Call) -> bool:
        if call.action != self.action or self.times == 0:
            return False
        if self.region is not None and call.region != self.region:
            return False
        for key, value in self.params.items():
            # SubnetId=... matches SubnetId and NetworkInterface.N.SubnetId alike
            if not any(k == key or k.endswith("." + key) for k, v in call.params.items() if v == value):
                return False
        return True


class MotoEC2:
    """moto server(s) plus the proxy; use as a context manager or call start()/stop()."""

    def __init__(self, regions: list[str] | None = None, log_dir: Path | None = None):
        # regions: one moto process per region listed (requests for other regions go to the first);
        # None: one moto process for every region.
        self.regions = list(regions or [])
        self.log_dir = log_dir
        self._processes: list[subprocess.Popen] = []
        self._backends: dict[str, str] = {}
        self._default_backend = ""
        self._server: http.server.ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.faults: list[Fault] = []

    # --- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> MotoEC2:
        names = self.regions or ["shared"]
        ports = {name: free_port() for name in names}
        self._amis = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="moto-amis-", delete=False)  # noqa: SIM115
        json.dump([IMAGE], self._amis)
        self._amis.close()
        env = {**aws_environment(), "MOTO_AMIS_PATH": self._amis.name}
        for name, port in ports.items():
            log = open(self.log_dir / f"moto-{name}.log", "wb") if self.log_dir else subprocess.DEVNULL  # noqa: SIM115
            self._processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
            )  # pylint: disable=subprocess-popen-preexec-fn
            if log is not subprocess.DEVNULL:
                log.close()
        for name, port in ports.items():
            self._wait(port)
            self._backends[name] = f"127.0.0.1:{port}"
        self._default_backend = self._backends[names[0]]

        fleet = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_POST(self):
                fleet._handle(self)

            def do_GET(self):
                fleet._handle(self)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="moto-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if getattr(self, "_amis", None):
            os.unlink(self._amis.name)
            self._amis = None

    def __enter__(self) -> MotoEC2:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def _wait(port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/moto-api/data.json")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto server on port {port} did not start in {timeout:.0f} s")

    # --- what clients use ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def client(self, service: str = "ec2", region: str = "us-east-1"):
        import boto3  # pylint: disable=import-outside-toplevel

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def reset(self) -> None:
        """Empty every moto backend (moto's reset API) and forget the recorded calls and faults."""
        for backend in self._backends.values():
            connection = http.client.HTTPConnection(backend, timeout=30)
            connection.request("POST", "/moto-api/reset")
            connection.getresponse().read()
            connection.close()
        self.clear_calls()
        self.faults.clear()

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def calls_of(self, action: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.action == action]

    def count(self, action: str | None = None, region: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (action is None or c.action == action) and (region is None or c.region == region)
            )

    def fail(
        self,
        action: str,
        code: str,
        message: str = "",
        status: int = 500,
        region: str | None = None,
        times: int | None = None,
        **params: str,
    ) -> Fault:
        """Answer matching requests (action, region, parameters such as SubnetId) with an AWS error, not forwarding them.

        AWS answers InsufficientInstanceCapacity with HTTP 500 (which boto3 retries by default), client errors
        such as AuthFailure or UnauthorizedOperation with 4xx: pass ``status`` accordingly.
        """
        fault = Fault(
            action=action,
            code=code,
            message=message or f"injected {code}",
            status=status,
            params=dict(params),
            region=region,
            times=times,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    # --- proxy -----------------------------------------------------------------------------------------
    def _handle(self, request: http.server.BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        match = _CREDENTIAL_RE.search(request.headers.get("Authorization", ""))
        region = match.group(1) if match else "us-east-1"
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"))) if body else {}
        params.update(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.path).query))
        call = Call(region=region, action=params.get("Action", request.command + " " + request.path), params=params)
        fault = None
        with self._lock:
            self.calls.append(call)
            for candidate in self.faults:
                if candidate.matches(call):
                    fault = candidate
                    if fault.times is not None:
                        fault.times -= 1
                    break
        if fault is not None:
            payload = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code><Message>%s</Message>'
                "</Error></Errors><RequestID>%s</RequestID></Response>"
                % (fault.code, _xml_escape(fault.message), uuid.uuid4())
            ).encode()
            request.send_response(fault.status)
            request.send_header("Content-Type", "text/xml;charset=UTF-8")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return

        backend = self._backends.get(region, self._default_backend)
        connection = http.client.HTTPConnection(backend, timeout=300)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        request.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() not in ("server", "date"):
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def seed_instances(
    client, count: int, instance_type: str, tags: dict[str, str], subnet_id: str | None = None, batch: int = 100
) -> list[str]:
    """Launch ``count`` instances of the first moto AMI with tags; returns their IDs."""
    image = IMAGE_ID
    ids = []
    remaining = count
    while remaining > 0:
        n = min(batch, remaining)
        kwargs = {
            "ImageId": image,
            "MinCount": n,
            "MaxCount": n,
            "InstanceType": instance_type,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ],
        }
        if subnet_id:
            kwargs["SubnetId"] = subnet_id
        ids.extend(i["InstanceId"] for i in client.run_instances(**kwargs)["Instances"])
        remaining -= n
    return ids
