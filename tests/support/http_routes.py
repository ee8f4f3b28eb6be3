# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A local HTTP server that answers GETs from a table, for testing the roles' small health-check helpers."""

from __future__ import annotations

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _RoutesHandler(BaseHTTPRequestHandler):
    """Answers from server.routes: path -> (status, body) or (status, body, {header: value}); unknown paths 404.
    Records each request's headers in server.seen."""

    def do_GET(self):  # pylint: disable=invalid-name
        self.server.seen.append(dict(self.headers))
        answer = self.server.routes.get(self.path, (404, "no such path"))
        status, body, headers = answer if len(answer) == 3 else (*answer, {})
        data = body.encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


@contextlib.contextmanager
def serve_routes():
    """A running server on 127.0.0.1 with .routes (fill it), .seen, .port and .url; shut down on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RoutesHandler)
    server.routes, server.seen = {}, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.port = server.server_address[1]
    server.url = f"http://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
