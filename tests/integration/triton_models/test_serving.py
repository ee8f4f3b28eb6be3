"""Every CPU-servable model in triton-models/, served by a real tritonserver (2.51, nvidia-pytriton wheel).

One server for the module (explicit mode, ``--load-model=*``), on a repository built the way the
triton_server role builds it: each model's ``config.pbtxt.j2`` rendered (KIND_CPU) and its version
directories copied. distilbert-base-uncased is left out: it needs the onnxruntime backend, which the
wheel does not have (tests/unit/triton_models validates its configuration).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import time

import numpy as np
import pytest
from google.protobuf import json_format

from tests.support import tritonserver
from tests.support.pdf import make_pdf
from tests.support.triton_models import MODELS_DIR, install_model, parse_config, render_config

pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0, reason="the tritonserver support installs a .pth hook into the system Python (root)"
    ),
    pytest.mark.skipif(
        not tritonserver.available(), reason="no tritonserver binary (nvidia-pytriton wheel) in this venv"
    ),
]

DOCLING = MODELS_DIR / "docling_granite_python"
TINY = MODELS_DIR / "tiny_onnx_python"
# name in the repository -> (source, template variables besides the name)
DEPLOYED = {
    "docling_granite_python": (DOCLING, {}),
    "docling_pypdf_batch": (
        DOCLING,
        {"triton_model_max_batch_size": 4, "triton_model_parameters": {"engine": "pypdf"}},
    ),
    "tiny_onnx_python": (TINY, {"triton_model_max_batch_size": 8, "triton_model_instance_count": 2}),
    "tiny_onnx_nobatch": (
        TINY,
        {"triton_model_max_batch_size": 0, "triton_model_parameters": {"intra_op_num_threads": "1"}},
    ),
}
CPU = {
    "triton_model_instance_kind": "KIND_CPU",
    "triton_model_gpus": [],
    "triton_model_instance_count": 1,
    "triton_model_parameters": {},
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def bytes_input(name: str, values: list[str], shape: list[int] | None = None) -> dict:
    return {"name": name, "datatype": "BYTES", "shape": shape or [len(values)], "data": values}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("triton")
    for name, (source, variables) in DEPLOYED.items():
        install_model(source, root / "models", **{**CPU, **variables, "triton_model_name": name})
    srv = tritonserver.TritonServer(root / "models", root / "work", model_control_mode="explicit", load_models=["*"])
    srv.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = {entry["name"]: entry.get("state") for entry in srv.index()}
            if len(states) == len(DEPLOYED) and all(state in ("READY", "UNAVAILABLE") for state in states.values()):
                break
            time.sleep(0.1)
        yield srv
    finally:
        srv.stop()


def test_every_model_is_ready(server):
    states = {entry["name"]: (entry.get("state"), entry.get("reason")) for entry in server.index()}
    assert states == dict.fromkeys(DEPLOYED, ("READY", None)), server.log()
    for name in DEPLOYED:
        assert server.get(f"/v2/models/{name}/ready")[0] == 200
    assert server.get("/v2/health/ready")[0] == 200


def test_served_config_is_the_rendered_one(server):
    status, config = server.get("/v2/models/docling_pypdf_batch/config")
    assert status == 200
    assert config["max_batch_size"] == 4
    assert config["parameters"] == {"engine": {"string_value": "pypdf"}}
    assert [(group["kind"], group["count"]) for group in config["instance_group"]] == [("KIND_CPU", 1)]
    assert server.get("/v2/models/tiny_onnx_python/config")[1]["instance_group"][0]["count"] == 2


def test_docling_model_reads_a_pdf(server):
    if importlib.util.find_spec("docling") is not None:
        pytest.skip("Docling is installed in this venv: the model would take the docling path")
    pdf = make_pdf(["Vessel Oceanid Calypso registered 2021", "Tonnage 1200 gross (second page)"])
    status, body = server.infer(
        "docling_granite_python",
        [bytes_input("pdf_base64", [b64(pdf)]), bytes_input("prompt", ["Extract vessel summary"])],
    )
    assert status == 200, body
    [output] = body["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("result", "BYTES", [1])
    result = json.loads(output["data"][0])
    assert result["engine"] == "pypdf" and result["format"] == "text" and result["pages"] == 2
    assert "Vessel Oceanid Calypso registered 2021" in result["text"]
    assert "Tonnage 1200 gross (second page)" in result["text"]
    assert result["prompt"] == "Extract vessel summary"
    assert result["summary"] is None


def test_docling_model_prompt_is_optional(server):
    status, body = server.infer("docling_granite_python", [bytes_input("pdf_base64", [b64(make_pdf(["no prompt"]))])])
    assert status == 200, body
    result = json.loads(body["outputs"][0]["data"][0])
    assert result["prompt"] == "" and "no prompt" in result["text"]


def test_docling_model_accepts_wrapped_base64(server):
    wrapped = "\n".join(b64(make_pdf(["wrapped at 76"]))[i : i + 76] for i in range(0, 2000, 76))
    status, body = server.infer("docling_granite_python", [bytes_input("pdf_base64", [wrapped])])
    assert status == 200, body
    assert "wrapped at 76" in json.loads(body["outputs"][0]["data"][0])["text"]


@pytest.mark.parametrize(
    "value, words",
    [
        ("this is not base64!", ["pdf_base64", "not valid base64"]),
        (b64(b"<html>not a pdf</html>"), ["does not decode to a PDF", "%PDF-"]),
        (b64(b"%PDF-1.4\nbroken"), ["could not read the PDF"]),
    ],
)
def test_docling_model_rejects_bad_input(server, value, words):
    status, body = server.infer("docling_granite_python", [bytes_input("pdf_base64", [value])])
    assert status == 400, body
    for word in words:
        assert word in body["error"]


def test_docling_model_batch(server):
    pdfs = [b64(make_pdf(["first document"])), b64(make_pdf(["second document"]))]
    status, body = server.infer(
        "docling_pypdf_batch", [bytes_input("pdf_base64", pdfs, [2, 1]), bytes_input("prompt", ["p1", "p2"], [2, 1])]
    )
    assert status == 200, body
    assert body["outputs"][0]["shape"] == [2, 1]
    results = [json.loads(item) for item in body["outputs"][0]["data"]]
    assert [(r["engine"], r["prompt"], r["text"].strip()) for r in results] == [
        ("pypdf", "p1", "first document"),
        ("pypdf", "p2", "second document"),
    ]
    status, body = server.infer("docling_pypdf_batch", [bytes_input("pdf_base64", [pdfs[0], "@@@"], [2, 1])])
    assert status == 400 and body["error"].startswith("document 1: pdf_base64 is not valid base64"), body


def test_forced_docling_engine_fails_to_load_clearly(server):
    if importlib.util.find_spec("docling") is not None:
        pytest.skip("Docling is installed in this venv")
    variables = {**CPU, "triton_model_name": "docling_forced", "triton_model_parameters": {"engine": "docling"}}
    config = parse_config(render_config(DOCLING, **variables))
    body = {
        "parameters": {
            "config": json_format.MessageToJson(config),
            "file:1/model.py": b64((DOCLING / "1" / "model.py").read_bytes()),
        }
    }
    status, reply = server.request("POST", "/v2/repository/models/docling_forced/load", body)
    assert status == 400
    assert "engine 'docling' was asked for, but Docling cannot be imported" in reply["error"]


@pytest.mark.parametrize("model", ["tiny_onnx_python", "tiny_onnx_nobatch"])
def test_tiny_onnx_model_computes_the_affine_map(server, model):
    weights = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [0.5, 0.25, 0.0], [-1.0, 2.0, 3.0]], dtype=np.float32)
    bias = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    x = np.array([[1, 2, 3, 4], [-1, 0, 5, 2], [0, 0, 0, 0]], dtype=np.float32)
    status, body = server.infer(
        model, [{"name": "x", "datatype": "FP32", "shape": [3, 4], "data": x.reshape(-1).tolist()}]
    )
    assert status == 200, body
    [output] = body["outputs"]
    assert (output["name"], output["datatype"], output["shape"]) == ("y", "FP32", [3, 3])
    assert output["data"] == (x @ weights + bias).reshape(-1).tolist()
    assert output["data"] == [-0.5, 8.75, 12.5, 0.5, 3.25, 4.5, 1.0, -2.0, 0.5]
