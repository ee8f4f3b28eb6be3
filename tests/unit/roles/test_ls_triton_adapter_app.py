# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ls-triton-adapter app's own logic, without Triton: label configs, task data, shapes, error mapping.

The app is loaded from the role's files/ (as the service runs it); Triton is replaced by a recording fake, so these
tests need neither tritonclient nor a server (tests/integration/ls_triton_adapter runs it against a real one).
"""

from __future__ import annotations

import base64
import http.server
import importlib.util
import json
import socket
import threading
import time
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[3] / "roles" / "ls_triton_adapter" / "files" / "ls_triton_adapter.py"
spec = importlib.util.spec_from_file_location("ls_triton_adapter", APP)
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< >>\nendobj\n" + b"x" * 200
PDF64 = base64.b64encode(PDF).decode()


def jwt(claims: dict) -> str:
    return "e30." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + ".sig"


PAT = jwt({"token_type": "refresh", "exp": 4102444800})
# Far in the future: an expiry taken from the clock when this module is imported ran out before the test ran once
# the unit tests shared the machine with the molecule lane (collection to test took over 5 minutes).
ACCESS = jwt({"token_type": "access", "exp": 4102444800})
CONFIG = (
    '<View><Text name="text" value="$text"/><Labels name="label" toName="text"><Label value="Vessel"/></Labels>'
    '<TextArea name="extracted_text" toName="text" editable="true"/></View>'
)


class FakeTriton:
    def __init__(self, text="extracted", error=None):
        self.calls = []
        self.text, self.error = text, error

    def infer(self, model, pdf_base64, prompt):
        self.calls.append((model, pdf_base64, prompt))
        if self.error:
            raise self.error
        return {"engine": "pypdf", "format": "text", "pages": 1, "text": self.text, "prompt": prompt, "summary": None}

    def model_version(self, model):
        return f"{model}:1"

    def health(self, model):
        return {"url": "http://triton:8000", "model": model, "ready": False, "model_ready": False, "error": "down"}


def adapter(triton=None, **config):
    return app.Adapter(app.Config(**config), triton=triton or FakeTriton())


# --- configuration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "target", "ssl"),
    [
        ("http://127.0.0.1:8000", "127.0.0.1:8000", False),
        ("https://gpu.example.com", "gpu.example.com:443", True),
        ("https://gpu.example.com/triton/", "gpu.example.com:443/triton", True),
        ("http://calypso", "calypso:80", False),
        ("http://[::1]:8000", "[::1]:8000", False),
    ],
)
def test_triton_url_becomes_tritonclients_host_port_and_prefix(url, target, ssl):
    assert app.parse_triton_url(url) == (target, ssl)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("calypso:8000", "must be an http:// or https:// URL"),
        ("ftp://calypso", "must be an http:// or https:// URL"),
        ("http://user:pw@calypso:8000", "must not carry credentials"),
        ("http://calypso:8000/?x=1", "must not have a query"),
    ],
)
def test_a_bad_triton_url_is_refused_naming_it(url, message):
    with pytest.raises(ValueError, match=message):
        app.parse_triton_url(url)


def test_config_from_environment_and_its_errors():
    config = app.Config.from_env(
        {
            "TRITON_BASE_URL": "https://gpu.example.com/t",
            "LS_TRITON_ADAPTER_CONNECT_TIMEOUT": "1.5",
            "LS_TRITON_ADAPTER_WORKERS": "3",
            "PORT": "9191",
            "CF_ACCESS_CLIENT_ID": "id.access",
            "CF_ACCESS_CLIENT_SECRET": "s3cret",
        }
    )
    assert (config.triton_target, config.triton_ssl, config.connect_timeout, config.workers, config.port) == (
        "gpu.example.com:443/t",
        True,
        1.5,
        3,
        9191,
    )
    assert config.model == "docling_granite_python" and config.bind == "127.0.0.1"
    assert config.triton_headers() == {"CF-Access-Client-Id": "id.access", "CF-Access-Client-Secret": "s3cret"}
    assert app.Config.from_env({}).triton_headers() == {}
    with pytest.raises(ValueError, match="LS_TRITON_ADAPTER_INFERENCE_TIMEOUT='soon' is not a number"):
        app.Config.from_env({"LS_TRITON_ADAPTER_INFERENCE_TIMEOUT": "soon"})
    with pytest.raises(ValueError, match="must be greater than 0"):
        app.Config.from_env({"LS_TRITON_ADAPTER_CONNECT_TIMEOUT": "0"})
    with pytest.raises(ValueError, match="must be set together"):
        app.Config.from_env({"CF_ACCESS_CLIENT_ID": "only-the-id"})


# --- label config -------------------------------------------------------------------------------------------------


def test_the_first_textarea_and_its_to_name_are_used():
    assert app.parse_label_config(CONFIG) == ("extracted_text", "text")
    nested = '<View><View><PDF name="doc" value="$pdf"/></View><TextArea name="a" toName="doc,text"/><TextArea name="b" toName="x"/></View>'
    assert app.parse_label_config(nested) == ("a", "doc")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("", "label config is empty"),
        ("<View><Text", "not valid XML"),
        ('<View><Text name="t" value="$text"/></View>', "has no <TextArea>"),
        ('<View><TextArea name="t"/></View>', "needs both name and toName"),
    ],
)
def test_a_label_config_without_a_usable_textarea_is_a_400(config, message):
    with pytest.raises(app.BadRequest, match=message) as err:
        app.parse_label_config(config)
    assert err.value.status == 400


# --- task data ----------------------------------------------------------------------------------------------------


def test_data_uri_base64_goes_to_triton_as_it_came():
    assert app.split_data_uri("data:application/pdf;base64," + PDF64) == PDF64
    assert app.split_data_uri("data:application/pdf;name=a.pdf;base64," + PDF64) == PDF64
    assert app.split_data_uri("/data/upload/1/a.pdf") is None
    assert app.split_data_uri("data:text/plain,hello") is None
    triton = FakeTriton()
    result = adapter(triton).predict_tasks(
        {"tasks": [{"id": 7, "data": {"pdf": "data:application/pdf;base64," + PDF64}}], "label_config": CONFIG}
    )
    assert triton.calls == [("docling_granite_python", PDF64, "")]
    assert result == {
        "results": [
            {
                "result": [
                    {
                        "from_name": "extracted_text",
                        "to_name": "text",
                        "type": "textarea",
                        "value": {"text": ["extracted"]},
                    }
                ],
                "score": 1.0,
                "model_version": "docling_granite_python:1",
            }
        ]
    }


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        ("", app.BadRequest, "is empty"),
        ("<html>not base64", app.BadRequest, "is not base64"),
        (base64.b64encode(b"GIF89a" + b"0" * 100).decode(), app.BadRequest, "does not decode to a PDF"),
        ("QUJD" * 400, app.TooLarge, "over the limit of 1024 bytes"),
    ],
)
def test_bad_base64_is_refused_before_triton(payload, error, message):
    with pytest.raises(error, match=message):
        app._checked_base64(payload, 1024, "pdf_base64")


def test_wrapped_base64_is_accepted():
    wrapped = "\n".join(PDF64[i : i + 76] for i in range(0, len(PDF64), 76))
    assert app._checked_base64(wrapped, 10**6, "pdf_base64") == wrapped


def test_a_task_without_the_document_gets_an_empty_prediction_and_the_others_theirs(caplog):
    triton = FakeTriton()
    tasks = [
        {"id": 1, "data": {"text": "no pdf"}},
        {"id": 2, "data": {"pdf": "data:application/pdf;base64," + PDF64}},
        {"id": 3, "data": {"pdf": "relative/path.pdf"}},
    ]
    results = adapter(triton).predict_tasks({"tasks": tasks, "label_config": CONFIG})["results"]
    assert [item["result"] != [] for item in results] == [False, True, False]
    assert results[0] == {"result": [], "score": 0.0, "model_version": "docling_granite_python:1"}
    assert "task 1: no prediction: the task's data has no 'pdf' key" in caplog.text
    assert "task 3: no prediction: the task's document must be a data: URI" in caplog.text


def test_a_document_triton_rejects_gives_an_empty_prediction():
    triton = FakeTriton(error=app.DocumentRejected("Triton rejected the request: pypdf could not read the PDF"))
    results = adapter(triton).predict_tasks(
        {"tasks": [{"id": 1, "data": {"pdf": "data:application/pdf;base64," + PDF64}}], "label_config": CONFIG}
    )["results"]
    assert results == [{"result": [], "score": 0.0, "model_version": "docling_granite_python:1"}]


@pytest.mark.parametrize(("error", "status"), [(app.TritonUnavailable("down"), 502), (app.TritonTimeout("slow"), 504)])
def test_triton_down_or_slow_fails_the_whole_request(error, status):
    body = {"tasks": [{"id": 1, "data": {"pdf": "data:application/pdf;base64," + PDF64}}], "label_config": CONFIG}
    assert adapter(FakeTriton(error=error)).handle("POST", "/predict", body) == (
        status,
        {"status": status, "detail": str(error)},
    )


def test_empty_text_scores_zero():
    assert app.prediction("t", "x", "  ", "m:1")["score"] == 0.0
    assert app.prediction("t", "x", "text", "m:1")["score"] == 1.0


# --- Label Studio files -------------------------------------------------------------------------------------------


@pytest.fixture(name="label_studio")
def fixture_label_studio():
    """A tiny file server that records the Authorization header it gets."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            body = PDF if self.path.endswith(".pdf") else b"<html>not a pdf</html>"
            wanted = "Bearer " + ACCESS if "bearer" in self.path else "Token env-key"
            refused = ("only-env" in self.path or "bearer" in self.path) and self.headers.get("Authorization") != wanted
            self.send_response(404 if "missing" in self.path else 401 if refused else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body.get("refresh")))
            answer = json.dumps({"access": ACCESS}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_label_studio_paths_are_read_with_the_token_from_setup(label_studio):
    url, seen = label_studio
    triton = FakeTriton()
    backend = adapter(triton)
    assert backend.setup({"project": "4.1700000000", "hostname": url + "/", "access_token": "legacy-key"}) == {
        "model_version": "docling_granite_python:1"
    }
    body = {"tasks": [{"id": 1, "data": {"pdf": "/data/upload/4/a.pdf"}}], "label_config": CONFIG, "project": "4.17"}
    assert backend.predict_tasks(body)["results"][0]["result"]
    assert seen == [("/data/upload/4/a.pdf", "Token legacy-key")]
    assert triton.calls[0][1] == PDF64


def test_env_label_studio_is_the_fallback_and_foreign_urls_get_no_token(label_studio):
    url, seen = label_studio
    backend = adapter(label_studio_url=url, label_studio_api_key="env-key")
    assert backend.resolve_url("/data/upload/1/a.pdf", "9") == (url + "/data/upload/1/a.pdf", "", True)
    assert backend.resolve_url("https://files.example.com/a.pdf", "9") == ("https://files.example.com/a.pdf", "", False)
    assert backend.task_pdf_base64({"data": {"pdf": "/data/upload/1/a.pdf"}}, "9") == PDF64
    assert seen == [("/data/upload/1/a.pdf", "Token env-key")]
    with pytest.raises(app.BadRequest, match="no Label Studio URL is known"):
        adapter().resolve_url("/data/upload/1/a.pdf", "9")


def test_a_refused_setup_token_falls_back_to_the_configured_key(label_studio):
    url, seen = label_studio
    backend = adapter(label_studio_url=url, label_studio_api_key="env-key")
    backend.setup({"project": "3.1", "hostname": url, "access_token": "disabled-legacy"})
    assert backend.task_pdf_base64({"data": {"pdf": "/data/upload/3/only-env.pdf"}}, "3") == PDF64
    assert seen == [
        ("/data/upload/3/only-env.pdf", "Token disabled-legacy"),
        ("/data/upload/3/only-env.pdf", "Token env-key"),
    ]
    with pytest.raises(app.Unauthorized, match="HTTP 401"):
        adapter(label_studio_url=url).task_pdf_base64({"data": {"pdf": "/data/upload/3/only-env.pdf"}}, "3")


def test_a_fetched_file_that_is_not_a_pdf_or_missing_or_too_large_is_refused(label_studio):
    url = label_studio[0]
    backend = adapter(label_studio_url=url)
    with pytest.raises(app.BadRequest, match="is not a PDF"):
        backend.task_pdf_base64({"data": {"pdf": url + "/page.html"}}, "1")
    with pytest.raises(app.BadRequest, match="HTTP 404"):
        backend.task_pdf_base64({"data": {"pdf": url + "/missing.pdf"}}, "1")
    with pytest.raises(app.TooLarge, match="over the limit of 100 bytes"):
        adapter(max_pdf_bytes=100).task_pdf_base64({"data": {"pdf": url + "/a.pdf"}}, "1")


def test_a_personal_access_token_is_exchanged_once_for_a_bearer_access_token(label_studio):
    url, seen = label_studio
    backend = adapter(label_studio_url=url, label_studio_api_key=PAT)
    for _round in range(2):
        assert backend.task_pdf_base64({"data": {"pdf": "/data/upload/2/bearer.pdf"}}, "2") == PDF64
    assert seen == [
        ("/api/token/refresh/", PAT),
        ("/data/upload/2/bearer.pdf", "Bearer " + ACCESS),
        ("/data/upload/2/bearer.pdf", "Bearer " + ACCESS),
    ]


def test_personal_access_token_is_recognised_as_a_jwt_with_exp():
    claims = (
        base64.urlsafe_b64encode(json.dumps({"token_type": "refresh", "exp": 4102444800}).encode()).decode().rstrip("=")
    )
    assert app.jwt_expiry(f"e30.{claims}.sig") == 4102444800.0
    assert app.jwt_expiry("0123456789abcdef0123456789abcdef01234567") is None


# --- the other endpoints and the error shape ----------------------------------------------------------------------


def test_health_is_up_even_when_triton_is_down():
    status, body = adapter().handle("GET", "/health", None)
    assert status == 200 and body["status"] == "UP" and body["model_class"] == "LsTritonAdapter"
    assert body["triton"]["ready"] is False
    assert adapter().handle("GET", "/", None)[0] == 200


def test_versions_metrics_webhook_and_unknown_routes():
    backend = adapter()
    assert backend.handle("GET", "/versions", None) == (200, {"versions": ["docling_granite_python:1"]})
    assert backend.handle("GET", "/metrics", None) == (200, {})
    assert backend.handle("POST", "/webhook", {"action": "ANNOTATION_CREATED"}) == (
        201,
        {"result": None, "status": "ok"},
    )
    assert backend.handle("POST", "/webhook", {"action": "TASKS_CREATED"}) == (200, {"status": "Unknown event"})
    assert backend.handle("GET", "/nope", None)[0] == 404
    assert backend.handle("DELETE", "/predict", None)[0] == 405


def test_direct_predict_returns_the_models_result_and_maps_errors():
    triton = FakeTriton(text="hello")
    status, body = adapter(triton).handle(
        "POST", "/predict", {"model": "docling_granite_python", "pdf_base64": PDF64, "prompt": "Extract vessel summary"}
    )
    assert status == 200 and body["text"] == "hello" and body["prompt"] == "Extract vessel summary"
    assert triton.calls == [("docling_granite_python", PDF64, "Extract vessel summary")]
    assert adapter().handle("POST", "/predict", {"prompt": "x"}) == (
        400,
        {"status": 400, "detail": "'pdf_base64' (the PDF, base64) is missing or not a string"},
    )
    rejected = FakeTriton(error=app.DocumentRejected("Triton rejected the request (the inference, HTTP 400): bad"))
    assert adapter(rejected).handle("POST", "/predict", {"pdf_base64": PDF64})[0] == 422
    assert adapter().handle("POST", "/predict", ["not", "an", "object"])[0] == 400
    assert adapter().handle("POST", "/predict", {"tasks": "x", "label_config": CONFIG})[0] == 400


def test_redacted_urls_carry_no_credentials():
    assert app.redact_url("https://user:pw@gpu.example.com:8443/t?token=x") == "https://gpu.example.com:8443/t"


# --- the HTTP layer: the fixed worker pool ------------------------------------------------------------------------


class BlockingTriton(FakeTriton):
    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def infer(self, model, pdf_base64, prompt):
        self.entered.release()
        self.release.wait(10)
        return super().infer(model, pdf_base64, prompt)


def post(port, path, body: bytes, headers=None):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    status, data = response.status, json.loads(response.read())
    conn.close()
    return status, data


@pytest.fixture(name="pool")
def fixture_pool():
    triton = BlockingTriton()
    server = app.PoolServer(("127.0.0.1", 0), adapter(triton, max_pdf_bytes=4096), workers=1, queue_size=1)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], triton
    finally:
        triton.release.set()
        server.shutdown()
        server.server_close()


def test_a_full_pool_answers_503_at_once_and_the_waiting_requests_are_served(pool):
    port, triton = pool
    body = json.dumps({"pdf_base64": PDF64}).encode()
    answers = {}

    def call(name):
        answers[name] = post(port, "/predict", body)

    first = threading.Thread(target=call, args=("first",))
    first.start()
    assert triton.entered.acquire(timeout=5)  # the only worker is busy
    second = threading.Thread(target=call, args=("second",))
    second.start()
    time.sleep(0.3)  # the second connection now waits in the queue (size 1)
    assert post(port, "/predict", body) == (
        503,
        {"status": 503, "detail": "every worker is busy and the queue is full; retry later"},
    )
    triton.release.set()
    first.join(10)
    second.join(10)
    assert answers["first"][0] == 200 and answers["second"][0] == 200


def test_http_errors_for_bodies(pool):
    port, triton = pool
    triton.release.set()
    assert post(port, "/predict", b"{not json")[0] == 400
    # the limit is checked on Content-Length, before the body is read
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
        answer = sock.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 413 ") and b"over the limit" in answer
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.makefile("rb").read().startswith(b"HTTP/1.1 411 ")
    assert post(port, "/setup", b'{"project": "1.2"}') == (200, {"model_version": "docling_granite_python:1"})
