# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The smoke modules: smoke_report (JSON, table, failure), triton_infer_check (against a fake tritonclient client)
and s3_roundtrip_check (against a fake S3 client). The real servers are in tests/integration/smoke."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args
from tritonclient.utils import InferenceServerException

from ansible_collections.oceanid.fleet.plugins.module_utils.s3_client import SourceError
from ansible_collections.oceanid.fleet.plugins.modules import s3_roundtrip_check, smoke_report, triton_infer_check


def run_module(module, capsys, check_mode=False, **args):
    """Run a module's main() with these arguments; return (failed, result)."""
    args = dict(args, _ansible_check_mode=check_mode)
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        pytest.raises(SystemExit) as exit_info,
    ):
        module.main()
    result = json.loads(capsys.readouterr().out)
    assert bool(result.get("failed")) == (exit_info.value.code != 0)
    return bool(result.get("failed")), result


def rec(status, check="c", detail="d"):
    return {"layer": "serving", "check": check, "host": "calypso", "status": status, "detail": detail}


# --- smoke_report ---------------------------------------------------------------------------------------------


def test_report_written_and_table_returned(capsys, tmp_path):
    path = tmp_path / "smoke" / "report.json"
    records = [rec("ok"), rec("not run", "k3s", "fleet_k3s_enabled is false")]
    failed, result = run_module(smoke_report, capsys, check_mode=True, records=records, path=str(path), inventory="lab")
    assert not failed and result["ok"] and not result["changed"]
    document = json.loads(path.read_text())
    assert document["checks"] == records
    assert document["counts"] == {"ok": 1, "failed": 0, "not run": 1}
    assert document["inventory"] == "lab" and document["ok"] is True
    assert result["table"][0].startswith("layer")
    assert result["table"][3].endswith("not run | fleet_k3s_enabled is false")


def test_report_fails_naming_the_failed_checks_after_writing(capsys, tmp_path):
    path = tmp_path / "report.json"
    records = [rec("ok"), rec("failed", "model x READY", "not in the repository index")]
    failed, result = run_module(smoke_report, capsys, records=records, path=str(path))
    assert failed
    assert result["msg"] == "1 smoke check(s) failed: serving/model x READY on calypso: not in the repository index"
    assert json.loads(path.read_text())["ok"] is False
    failed, result = run_module(smoke_report, capsys, records=records, path=str(path), fail_on_failed=False)
    assert not failed and result["ok"] is False and len(result["failed_checks"]) == 1


def test_report_refuses_a_not_run_without_reason(capsys, tmp_path):
    failed, result = run_module(smoke_report, capsys, records=[rec("not run", detail="")], path=str(tmp_path / "r"))
    assert failed and "not run without a reason" in result["msg"]
    assert not (tmp_path / "r").exists()


# --- triton_infer_check ---------------------------------------------------------------------------------------

TINY_META = {
    "name": "tiny",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
}
PDF_META = {
    "name": "pdf",
    "inputs": [
        {"name": "pdf_base64", "datatype": "BYTES", "shape": [1]},
        {"name": "prompt", "datatype": "BYTES", "shape": [1]},
    ],
    "outputs": [{"name": "result", "datatype": "BYTES", "shape": [1]}],
}


class FakeResult:
    def __init__(self, outputs):
        self.outputs = outputs

    def as_numpy(self, name):
        return self.outputs.get(name)


class FakeClient:
    """What triton_infer_check calls of tritonclient.http.InferenceServerClient, with canned answers."""

    def __init__(self, live=True, ready=True, index=None, metadata=None, configs=None, answers=None):
        self.live, self.ready = live, ready
        self.index = index if index is not None else []
        self.metadata, self.configs, self.answers = metadata or {}, configs or {}, answers or {}
        self.sent = []

    def is_server_live(self, headers=None):
        if isinstance(self.live, Exception):
            raise self.live
        return self.live

    def is_server_ready(self, headers=None):
        return self.ready

    def get_model_repository_index(self, headers=None):
        return self.index

    def get_model_metadata(self, name, model_version="", headers=None):
        return self.metadata[name]

    def get_model_config(self, name, model_version="", headers=None):
        return self.configs.get(name, {})

    def infer(self, name, inputs, model_version="", outputs=None, headers=None):
        self.sent.append((name, model_version, [(i.name(), i.datatype(), i.shape()) for i in inputs]))
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return FakeResult(answer)


def smoke_of(client, models, samples=None):
    return triton_infer_check.TritonSmoke(client, "http://h:8000", "calypso", "serving", models, samples).run()


def by_check(records):
    return {item["check"]: (item["status"], item["detail"]) for item in records}


def test_every_check_ok_with_one_inference_per_model():
    client = FakeClient(
        index=[
            {"name": "tiny", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
            {"name": "tiny", "version": "2", "state": "READY"},
            {"name": "pdf", "version": "1", "state": "READY"},
        ],
        metadata={"tiny": TINY_META, "pdf": PDF_META},
        configs={"pdf": {"input": [{"name": "pdf_base64"}, {"name": "prompt", "optional": True}]}},
        answers={
            "tiny": {"y": np.array([[0.5, 1.0, 2.0]], dtype=np.float32)},
            "pdf": {"result": np.array([b'{"text": "oceanid smoke check"}'], dtype=np.object_)},
        },
    )
    records = smoke_of(
        client,
        ["tiny", "pdf"],
        {"pdf": {"inputs": {"pdf_base64": "JVBERi0="}, "expect": {"result": "oceanid smoke check"}}},
    )
    checks = by_check(records)
    assert [item["status"] for item in records] == ["ok"] * 6, records
    assert checks["model tiny READY"][1] == "repository index: version 2 READY"
    assert checks["inference tiny"][1] == "version 2: sent x FP32[1, 4]; got y FP32[1, 3] = [0.5, 1.0, 2.0]"
    assert client.sent == [("tiny", "2", [("x", "FP32", [1, 4])]), ("pdf", "1", [("pdf_base64", "BYTES", [1])])]
    assert {item["layer"] for item in records} == {"serving"} and {item["host"] for item in records} == {"calypso"}


def test_missing_and_failed_models_are_reported_with_reasons():
    client = FakeClient(
        ready=False,
        index=[{"name": "tiny", "version": "1", "state": "UNAVAILABLE", "reason": "ModuleNotFoundError: onnxruntime"}],
    )
    checks = by_check(smoke_of(client, ["tiny", "ghost"]))
    assert checks["triton ready"][0] == "failed"
    assert checks["model tiny READY"] == (
        "failed",
        "repository index: no READY version (version 1 UNAVAILABLE: ModuleNotFoundError: onnxruntime)",
    )
    assert checks["model ghost READY"] == ("failed", "not in the repository index (it lists: tiny)")
    assert checks["inference ghost"] == ("not run", "the model is not READY (see: model ghost READY)")


def test_server_down_fails_models_and_skips_the_rest_with_reasons():
    checks = by_check(smoke_of(FakeClient(live=ConnectionRefusedError(111, "Connection refused")), ["tiny"]))
    assert checks["triton live"][0] == "failed" and "Connection refused" in checks["triton live"][1]
    assert checks["triton ready"] == ("not run", "Triton did not answer /v2/health/live at http://h:8000")
    assert checks["model tiny READY"] == ("failed", "Triton did not answer at http://h:8000")
    assert checks["inference tiny"][0] == "not run"


def test_refused_inference_unmet_expectation_and_bad_sample_fail():
    ready = [{"name": name, "version": "1", "state": "READY"} for name in ("a", "b", "c")]
    client = FakeClient(
        index=ready,
        metadata={"a": TINY_META, "b": PDF_META, "c": TINY_META},
        answers={
            "a": InferenceServerException("unexpected shape for input 'x'"),
            "b": {"result": np.array([b"{}"], dtype=np.object_)},
        },
    )
    checks = by_check(
        smoke_of(client, ["a", "b", "c"], {"b": {"expect": {"result": "smoke"}}, "c": {"inputs": {"x": [1.0, 2.0]}}})
    )
    assert checks["inference a"][0] == "failed" and "Triton refused: " in checks["inference a"][1]
    assert "unexpected shape for input 'x'" in checks["inference a"][1]
    assert checks["inference b"][0] == "failed" and checks["inference b"][1].endswith(
        "output result does not contain 'smoke'"
    )
    assert checks["inference c"][0] == "failed" and "needs 4" in checks["inference c"][1]


def test_client_for_refuses_a_path():
    with pytest.raises(triton_infer_check.SmokeError, match="has a path"):
        triton_infer_check.client_for("http://h:8000/triton", 5)


def test_module_reports_an_unreachable_server_without_failing(capsys):
    failed, result = run_module(triton_infer_check, capsys, url="http://127.0.0.1:9", models=["m"], timeout=2)
    assert not failed and not result["changed"]
    assert [item["status"] for item in result["records"]] == ["failed", "not run", "failed", "not run"]


# --- s3_roundtrip_check ----------------------------------------------------------------------------------------


class FakeS3:
    def __init__(self, corrupt=False, sticky=False, refuse_put=False):
        self.objects, self.corrupt, self.sticky, self.refuse_put = {}, corrupt, sticky, refuse_put
        self.calls = []

    def put(self, bucket, key, body, content_type=None):
        self.calls.append("put")
        if self.refuse_put:
            raise SourceError("PUT s3://%s/%s refused: 403 AccessDenied" % (bucket, key))
        self.objects[key] = body[:-1] if self.corrupt else body

    def get(self, bucket, key, missing_ok=False):
        self.calls.append("get")
        return self.objects.get(key)

    def delete(self, bucket, key):
        self.calls.append("delete")
        if not self.sticky:
            self.objects.pop(key, None)

    def head(self, bucket, key):
        self.calls.append("head")
        return {} if key in self.objects else None

    def close(self):
        pass


@pytest.mark.parametrize(
    ("fake", "problem"),
    [
        (FakeS3(), None),
        (FakeS3(corrupt=True), "get: 3 bytes came back, not the 4 put (content differs)"),
        (FakeS3(sticky=True), "delete: the object is still there after DELETE"),
        (FakeS3(refuse_put=True), "put: PUT s3://b/k refused: 403 AccessDenied"),
    ],
)
def test_roundtrip(fake, problem):
    assert s3_roundtrip_check.roundtrip(fake, "b", "k", b"data") == problem
    if problem is None:
        assert fake.calls == ["put", "get", "delete", "head"] and not fake.objects
    elif "differs" in problem:
        assert fake.calls == ["put", "get", "delete"] and not fake.objects  # deleted whatever the get saw


def test_roundtrip_module_record(capsys):
    fake = FakeS3(corrupt=True)
    with mock.patch.object(s3_roundtrip_check, "S3Client", return_value=fake):
        failed, result = run_module(
            s3_roundtrip_check,
            capsys,
            check_mode=True,
            endpoint_url="http://10.0.0.7:8333",
            bucket="models",
            access_key="a",
            secret_key="lab-secret-for-the-test",
            host="seaweed1",
            size=16,
        )
    assert not failed and not result["changed"]
    assert result["record"]["status"] == "failed" and result["record"]["host"] == "seaweed1"
    assert result["record"]["detail"].startswith("http://10.0.0.7:8333 bucket models, key .oceanid-smoke/")
    assert "lab-secret-for-the-test" not in json.dumps(result)
