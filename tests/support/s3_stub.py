# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A small in-process S3 stub for unit tests of the transfer engine (the real server is SeaweedFS, in
tests/integration/s3): objects in a dict, HEAD, GET with Range, ListObjectsV2, and a request log."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.parse

from ansible_collections.oceanid.fleet.plugins.module_utils import model_manifest as mm
from ansible_collections.oceanid.fleet.plugins.module_utils import s3_client as c


def tree(path):
    """{relative path: bytes} of the files under path."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


class StubS3(http.server.ThreadingHTTPServer):
    """Objects in a dict; HEAD, GET (with Range), ListObjectsV2; counts requests. Not a signature checker.

    ``bucket_exists = False`` answers 404 for everything (as for a missing bucket); ``refuse = True`` answers 403
    (no body for HEAD, as S3 does for refused credentials)."""

    daemon_threads = True

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.bucket_exists = True
        self.refuse = False
        super().__init__(("127.0.0.1", 0), StubHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def put_model(self, key, files, part_size=4):
        entries = []
        for path, data in files.items():
            self.objects["models/%s/%s" % (key, path)] = data
            parts = [hashlib.sha256(data[i : i + part_size]).hexdigest() for i in range(0, len(data), part_size)] or [
                c.EMPTY_SHA256
            ]
            entries.append(
                {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": parts}
            )
        manifest = {"format": mm.MANIFEST_FORMAT, "key": key, "part_size": part_size, "files": entries}
        self.objects["manifests/models/%s.json" % key] = json.dumps(manifest).encode()


class StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def _key(self):
        parsed = urllib.parse.urlsplit(self.path)
        return urllib.parse.unquote(parsed.path.split("/", 2)[2]) if parsed.path.count(
            "/"
        ) >= 2 else "", urllib.parse.parse_qs(parsed.query)

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):  # pylint: disable=invalid-name
        key, _query = self._key()
        self.server.requests.append(("HEAD", key))
        data = self.server.objects.get(key)
        if self.server.refuse:
            self._send(403)
        elif key == "" and self.server.bucket_exists:
            self._send(200)
        elif data is None or not self.server.bucket_exists:
            self._send(404)
        else:
            self._send(200, data, {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})

    def do_GET(self):  # pylint: disable=invalid-name
        key, query = self._key()
        if "list-type" in query:
            self.server.requests.append(("LIST", key))
            prefix = query.get("prefix", [""])[0]
            items = "".join(
                '<Contents><Key>%s</Key><Size>%d</Size><ETag>"%s"</ETag></Contents>'
                % (k, len(v), hashlib.md5(v).hexdigest())
                for k, v in sorted(self.server.objects.items())
                if k.startswith(prefix)
            )
            body = (
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">%s<IsTruncated>false</IsTruncated></ListBucketResult>'
                % items
            ).encode()
            return self._send(200, body)
        self.server.requests.append(("GET", key))
        data = self.server.objects.get(key)
        if data is None:
            return self._send(404, b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>")
        ranged = self.headers.get("Range")
        if ranged:
            start, end = (int(x) for x in ranged.split("=")[1].split("-"))
            return self._send(206, data[start : end + 1])
        return self._send(200, data)
