# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ls-triton-adapter against a real tritonserver (2.51, nvidia-pytriton wheel, CPU) serving docling_granite_python.

The adapter runs as a subprocess on loopback, exactly the file the role installs, on this venv's Python (which has
tritonclient 2.73). Triton down is a free port nobody listens on; Triton slow is a socket that accepts and never
answers; CF Access headers are checked by a recording proxy in front of the real Triton.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.ls_triton_adapter.adapter_helpers import MODEL
from tests.support import tritonserver
from tests.support.pdf import make_pdf

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the tritonserver support installs a .pth hook into the system Python (root)"
    ),
    pytest.mark.skipif(
        not tritonserver.available(), reason="no tritonserver binary (nvidia-pytriton wheel) in this venv"
    ),
]

PAGES = ["MV Ocean Star IMO 9123456", "Flag Panama, gross tonnage 5120"]
PDF64 = base64.b64encode(make_pdf(PAGES)).decode("ascii")
TEXT = "\n\n".join(PAGES)
LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/><Labels name="label" toName="text"><Label value="Vessel"/></Labels>'
    '<TextArea name="extracted_text" toName="text" editable="true" perRegion="false"/></View>'
)
CF_ID, CF_SECRET = "0123abcd.access", "cf-secret-value-never-logged"


def ls_body(*pdfs: str, project: str = "1.1764800000") -> dict:
    tasks = [{"id": index + 1, "data": {"pdf": pdf, "text": "x"}} for index, pdf in enumerate(pdfs)]
    return {"tasks": tasks, "label_config": LABEL_CONFIG, "project": project, "params": {"context": None}}


def forwarding_proxy(target_url: str, on_request=None, close_after_answer: bool = False) -> ThreadingHTTPServer:
    """A started HTTP/1.1 proxy on loopback to ``target_url``. ``on_request(handler)`` sees each request first.
    With ``close_after_answer`` it closes every connection after its answer without saying so (no
    ``Connection: close``), as an idle time-out of Triton or of a proxy in front of it does."""

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self):
            if on_request:
                on_request(self)
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            request = urllib.request.Request(target_url + self.path, data=data, method=self.command, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, body, out = response.status, response.read(), response.headers
            except urllib.error.HTTPError as err:
                status, body, out = err.code, err.read(), err.headers
            self.send_response(status)
            for key, value in out.items():
                if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if close_after_answer:
                self.close_connection = True

        do_GET = do_POST = _forward

        def log_message(self, *args):
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


def test_health_setup_and_versions_against_a_ready_triton(triton, start_adapter):
    adapter = start_adapter(triton.url)
    status, body, elapsed = adapter.call("GET", "/health")
    assert status == 200 and elapsed < 1.0
    assert body == {
        "status": "UP",
        "model_class": "LsTritonAdapter",
        "triton": {"url": triton.url, "model": MODEL, "ready": True, "model_ready": True},
    }
    assert adapter.call("GET", "/")[0] == 200
    setup = {"project": "1.1764800000", "schema": LABEL_CONFIG, "hostname": "http://ls", "access_token": "k"}
    status, body, elapsed = adapter.call("POST", "/setup", setup)
    assert (status, body) == (200, {"model_version": f"{MODEL}:1"}) and elapsed < 3.0
    assert adapter.call("GET", "/versions")[:2] == (200, {"versions": [f"{MODEL}:1"]})
    assert adapter.call("GET", "/metrics")[:2] == (200, {})
    assert adapter.call("POST", "/webhook", {"action": "TASKS_CREATED", "tasks": []})[:2] == (
        200,
        {"status": "Unknown event"},
    )


def test_label_studio_predict_with_a_data_uri_returns_the_text_triton_extracted(triton, start_adapter):
    adapter = start_adapter(triton.url)
    status, body, _elapsed = adapter.call("POST", "/predict", ls_body("data:application/pdf;base64," + PDF64))
    assert status == 200, body
    assert body == {
        "results": [
            {
                "result": [
                    {"from_name": "extracted_text", "to_name": "text", "type": "textarea", "value": {"text": [TEXT]}}
                ],
                "score": 1.0,
                "model_version": f"{MODEL}:1",
            }
        ]
    }


def test_the_seeds_direct_predict_answers_the_models_result(triton, start_adapter):
    adapter = start_adapter(triton.url)
    body = {"model": MODEL, "pdf_base64": PDF64, "prompt": "Extract vessel summary"}
    status, result, _elapsed = adapter.call("POST", "/predict", body)
    assert (status, result) == (
        200,
        {
            "engine": "pypdf",
            "format": "text",
            "pages": 2,
            "text": TEXT,
            "prompt": "Extract vessel summary",
            "summary": None,
        },
    )


def test_a_document_triton_rejects(triton, start_adapter):
    adapter = start_adapter(triton.url)
    not_a_pdf = base64.b64encode(b"%PDF-1.4\nthis is not really a pdf").decode()
    status, body, _elapsed = adapter.call("POST", "/predict", {"pdf_base64": not_a_pdf})
    assert status == 422 and "pypdf could not read the PDF" in body["detail"], body
    # Label Studio form: that task gets an empty prediction, the good one its text
    status, body, _elapsed = adapter.call(
        "POST", "/predict", ls_body("data:application/pdf;base64," + not_a_pdf, "data:application/pdf;base64," + PDF64)
    )
    assert status == 200
    assert [item["result"] for item in body["results"]][0] == []
    assert body["results"][1]["result"][0]["value"]["text"] == [TEXT]
    assert "task 1: no prediction: Triton rejected the request" in adapter.log()


def test_label_studio_files_are_read_with_the_token_from_setup(triton, start_adapter):
    seen = []

    class Files(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            ok = self.headers.get("Authorization") == "Token legacy-key"
            body = base64.b64decode(PDF64) if ok else b'{"detail": "Authentication credentials were not provided."}'
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    files = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        adapter = start_adapter(triton.url)
        hostname = f"http://127.0.0.1:{files.server_address[1]}"
        setup = {"project": "5.1764800000", "schema": LABEL_CONFIG, "hostname": hostname, "access_token": "legacy-key"}
        assert adapter.call("POST", "/setup", setup)[0] == 200
        status, body, _elapsed = adapter.call(
            "POST", "/predict", ls_body("/data/upload/5/doc.pdf", project="5.1764800000")
        )
        assert status == 200 and body["results"][0]["result"][0]["value"]["text"] == [TEXT]
        assert seen == ["Token legacy-key"]
        assert "legacy-key" not in adapter.log()
    finally:
        files.shutdown()
        files.server_close()


def test_triton_down_is_a_clear_502_within_the_connect_bound(start_adapter):
    down = f"http://127.0.0.1:{tritonserver.free_port()}"
    adapter = start_adapter(
        down,
        LS_TRITON_ADAPTER_CONNECT_TIMEOUT="1",
        LS_TRITON_ADAPTER_INFERENCE_TIMEOUT="2",
    )
    status, body, elapsed = adapter.call("GET", "/health")
    assert status == 200 and elapsed < 1.0
    assert body["triton"]["ready"] is False and "unreachable" in body["triton"]["error"]
    status, body, elapsed = adapter.call("POST", "/predict", {"pdf_base64": PDF64})
    assert status == 502 and elapsed < 3.0
    assert body["detail"].startswith(f"Triton at {down} is unreachable (the inference): "), body
    status, body, _elapsed = adapter.call("POST", "/predict", ls_body("data:application/pdf;base64," + PDF64))
    assert status == 502 and "is unreachable" in body["detail"]
    # /setup still answers within Label Studio's 3 s, with the bare model name
    status, body, elapsed = adapter.call("POST", "/setup", {"project": "1.1"})
    assert (status, body) == (200, {"model_version": MODEL}) and elapsed < 3.0


@pytest.fixture(name="silent_triton")
def fixture_silent_triton():
    """A socket that accepts connections and never answers (a hung Triton or a black-holing proxy)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    accepted, stop = [], threading.Event()

    def accept():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        sock.close()


def test_a_slow_triton_is_a_clear_504_within_the_bound_and_no_worker_hangs(silent_triton, start_adapter):
    adapter = start_adapter(
        silent_triton,
        LS_TRITON_ADAPTER_CONNECT_TIMEOUT="1",
        LS_TRITON_ADAPTER_INFERENCE_TIMEOUT="1.5",
        LS_TRITON_ADAPTER_WORKERS="2",
    )
    status, body, elapsed = adapter.call("GET", "/health")
    assert status == 200 and elapsed < 1.0 and body["triton"]["ready"] is False
    status, body, elapsed = adapter.call("POST", "/predict", {"pdf_base64": PDF64})
    assert status == 504 and elapsed < 3.5, (status, body, elapsed)
    assert "did not answer the inference" in body["detail"]
    # more slow requests than workers: every one is answered, in rounds bounded by the timeout
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: adapter.call("POST", "/predict", {"pdf_base64": PDF64}), range(6)))
    assert [answer[0] for answer in answers] == [504] * 6
    assert max(answer[2] for answer in answers) < 3 * 2.5 + 1.5
    # the workers are free again
    assert adapter.call("GET", "/health")[0] == 200


def test_cf_access_headers_reach_triton_and_are_never_logged(triton, start_adapter):
    seen = []

    def record(handler):
        seen.append(
            (
                handler.command,
                handler.path,
                handler.headers.get("CF-Access-Client-Id"),
                handler.headers.get("CF-Access-Client-Secret"),
            )
        )

    proxy = forwarding_proxy(triton.url, on_request=record)
    try:
        adapter = start_adapter(
            f"http://127.0.0.1:{proxy.server_address[1]}/",
            CF_ACCESS_CLIENT_ID=CF_ID,
            CF_ACCESS_CLIENT_SECRET=CF_SECRET,
            LS_TRITON_ADAPTER_LOG_LEVEL="DEBUG",
        )
        assert adapter.call("GET", "/health")[1]["triton"]["ready"] is True
        status, body, _elapsed = adapter.call("POST", "/predict", {"pdf_base64": PDF64})
        assert status == 200 and body["text"] == TEXT
        assert adapter.call("POST", "/setup", {"project": "1.1"})[1] == {"model_version": f"{MODEL}:1"}
        paths = {entry[:2] for entry in seen}
        assert ("POST", f"/v2/models/{MODEL}/infer") in paths and ("GET", "/v2/health/ready") in paths
        assert ("GET", f"/v2/models/{MODEL}") in paths
        assert {entry[2:] for entry in seen} == {(CF_ID, CF_SECRET)}
        assert CF_SECRET not in adapter.log() and CF_ID not in adapter.log()
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_parallel_predicts_are_all_answered(triton, start_adapter):
    adapter = start_adapter(triton.url, LS_TRITON_ADAPTER_WORKERS="4")
    pdfs = [base64.b64encode(make_pdf([f"Vessel number {index}"])).decode() for index in range(24)]

    def predict(index):
        if index % 2:
            return adapter.call("POST", "/predict", {"pdf_base64": pdfs[index]})
        return adapter.call("POST", "/predict", ls_body("data:application/pdf;base64," + pdfs[index]))

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(predict, range(24)))
    texts = [
        body["text"] if index % 2 else body["results"][0]["result"][0]["value"]["text"][0]
        for index, (_status, body, _elapsed) in enumerate(answers)
    ]
    assert [answer[0] for answer in answers] == [200] * 24
    assert texts == [f"Vessel number {index}" for index in range(24)]


def test_a_kept_alive_connection_that_triton_closed_is_not_used_again(triton, start_adapter):
    """Triton, or a proxy in front of it (cloudflared, a load balancer), may close an idle kept-alive connection.

    This proxy answers each request and then closes the connection without saying so (no ``Connection: close``),
    as an idle time-out does. The next request must go out on a new connection, not fail on the closed one.
    """
    connections = []
    proxy = forwarding_proxy(
        triton.url, on_request=lambda handler: connections.append(handler.client_address), close_after_answer=True
    )
    try:
        adapter = start_adapter(f"http://127.0.0.1:{proxy.server_address[1]}/", LS_TRITON_ADAPTER_WORKERS="1")
        for _attempt in range(3):
            status, body, _elapsed = adapter.call("POST", "/predict", {"pdf_base64": PDF64})
            assert status == 200 and body["text"] == TEXT, body
        assert len(connections) >= 3
    finally:
        proxy.shutdown()
        proxy.server_close()
