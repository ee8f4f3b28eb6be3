# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""s3_model_ingest and s3_model_hydrate in-process: input checks, check mode, changed/unchanged, and a
verification failure that names the file and both digests (against the stub S3 of test_s3_transfer)."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.oceanid.fleet.plugins.modules import s3_model_hydrate, s3_model_ingest
from tests.support.s3_stub import StubS3, tree


def run(module, capsys, check_mode=False, diff=False, **args):
    args.update(_ansible_check_mode=check_mode, _ansible_diff=diff)
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        pytest.raises(SystemExit),
    ):
        module.main()
    result = json.loads(capsys.readouterr().out)
    return bool(result.get("failed")), result


@pytest.fixture
def stub():
    server = StubS3()
    yield server
    server.shutdown()


def common(stub_server):
    return {"endpoint_url": stub_server.url, "bucket": "b", "access_key": "AK", "secret_key": "SK"}


@pytest.mark.parametrize(
    "args,message",
    [
        ({"model_key": "m", "prefix": "p/"}, "mutually exclusive"),
        ({}, "one of the following is required"),
        ({"model_key": "m", "concurrency": 0}, "concurrency must be 1 or more"),
        ({"model_key": "m", "part_size": 10}, "part_size must be at least 1024"),
        ({"model_key": "m", "endpoint_url": "seaweed1:8333"}, "endpoint_url"),
        ({"model_key": "m", "secret_key": None}, "both access_key and secret_key"),
    ],
)
def test_hydrate_input_errors_are_named(stub, capsys, tmp_path, args, message):
    failed, result = run(s3_model_hydrate, capsys, **{**common(stub), "dest": str(tmp_path / "d"), **args})
    assert failed and message in result["msg"]


def test_hydrate_check_mode_diff_then_real_then_unchanged(stub, capsys, tmp_path):
    stub.put_model("m", {"a.bin": b"aaaa", "b.bin": b"bb"})
    args = {**common(stub), "model_key": "m", "dest": str(tmp_path / "d")}
    failed, result = run(s3_model_hydrate, capsys, check_mode=True, diff=True, **args)
    assert not failed and result["changed"] and result["diff"]["after"] == "a.bin\nb.bin\n"
    assert not (tmp_path / "d").exists()
    failed, result = run(s3_model_hydrate, capsys, **args)
    assert not failed and result["changed"] and tree(tmp_path / "d") == {"a.bin": b"aaaa", "b.bin": b"bb"}
    failed, result = run(s3_model_hydrate, capsys, **args)
    assert not failed and not result["changed"] and result["requests"]["GET"] == 0


def test_hydrate_verification_failure_names_file_and_digests(stub, capsys, tmp_path):
    stub.put_model("m", {"w.bin": b"good"})
    stub.objects["models/m/w.bin"] = b"evil"
    failed, result = run(s3_model_hydrate, capsys, **common(stub), model_key="m", dest=str(tmp_path / "d"))
    assert failed and "w.bin" in result["msg"] and "nothing was written to %s" % (tmp_path / "d") in result["msg"]
    assert result["path"] == "w.bin" and result["expected"] != result["actual"]
    assert result["changed"] is False and result["requests"]["GET"] >= 1
    assert not (tmp_path / "d").exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.bin").write_bytes(b"old")
    failed, result = run(s3_model_hydrate, capsys, **common(stub), model_key="m", dest=str(tmp_path / "d"))
    assert failed and "%s was left as it was" % (tmp_path / "d") in result["msg"]
    assert tree(tmp_path / "d") == {"old.bin": b"old"}


@pytest.mark.parametrize(
    "setup,message",
    [
        ({"bucket_exists": False}, "bucket b does not exist on http://127.0.0.1:"),
        ({"refuse": True}, "HTTP 403: the server refused the credentials or the signature"),
    ],
)
def test_hydrate_failures_say_why_and_report_no_change(stub, capsys, tmp_path, setup, message):
    stub.put_model("m", {"w.bin": b"good"})
    for name, value in setup.items():
        setattr(stub, name, value)
    failed, result = run(s3_model_hydrate, capsys, **common(stub), model_key="m", dest=str(tmp_path / "d"))
    assert failed and message in result["msg"] and "ingest" not in result["msg"]
    assert result["changed"] is False and isinstance(result["requests"], dict) and result["requests"]["HEAD"] >= 1


def test_input_errors_report_no_change_and_no_requests(stub, capsys, tmp_path):
    failed, result = run(s3_model_hydrate, capsys, **common(stub), model_key="m", dest=str(tmp_path), concurrency=0)
    assert failed and result["changed"] is False and result["requests"] == dict.fromkeys(result["requests"], 0)
    assert result["requests"]


@pytest.mark.parametrize("key", ["", "a//b", "../x", "a/./b"])
def test_ingest_rejects_bad_keys(stub, capsys, tmp_path, key):
    failed, result = run(s3_model_ingest, capsys, **common(stub), src=str(tmp_path), model_key=key)
    assert failed and "model_key" in result["msg"]


def test_ingest_rejects_a_missing_directory(stub, capsys, tmp_path):
    failed, result = run(s3_model_ingest, capsys, **common(stub), src=str(tmp_path / "nope"), model_key="m")
    assert failed and "is not a directory" in result["msg"]


def test_ingest_check_mode_writes_nothing(stub, capsys, tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    failed, result = run(s3_model_ingest, capsys, check_mode=True, **common(stub), src=str(tmp_path), model_key="m")
    assert not failed and result["changed"] and result["uploaded"] == ["model.onnx"]
    assert stub.objects == {}
