# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""plugins/module_utils/smoke.py: records, the report and its table, and the inputs of a smoke inference."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import smoke


def rec(status="ok", detail="seen", layer="serving", check="triton live", host="calypso"):
    return {"layer": layer, "check": check, "host": host, "status": status, "detail": detail}


def test_record_rejects_an_unknown_status():
    with pytest.raises(smoke.SmokeError, match="status 'green' of serving/live on h is not one of ok, failed, not run"):
        smoke.record("serving", "live", "h", "green", "x")


def test_normalize_names_the_bad_record():
    with pytest.raises(smoke.SmokeError, match=r"record 1 \('b'\) lacks host, detail"):
        smoke.normalize([rec(), {"layer": "x", "check": "b", "status": "ok"}])
    with pytest.raises(smoke.SmokeError, match="record 0 is a str"):
        smoke.normalize(["ok"])


def test_not_run_needs_a_reason():
    with pytest.raises(smoke.SmokeError, match="is not run without a reason"):
        smoke.normalize([rec(status="not run", detail="  ")])


def test_normalize_keeps_order_and_makes_strings():
    records = smoke.normalize([rec(detail=3), rec(status="failed", check="b")])
    assert [item["check"] for item in records] == ["triton live", "b"]
    assert records[0]["detail"] == "3"


def test_report_counts_and_ok():
    records = [rec(), rec(status="not run", detail="no cluster"), rec(status="failed", detail="down")]
    document = smoke.report(records, "2026-12-04T00:00:00+00:00", "inventories/lab")
    assert document["counts"] == {"ok": 1, "failed": 1, "not run": 1}
    assert document["ok"] is False
    assert document["format"] == smoke.REPORT_FORMAT
    assert document["checks"] == records
    assert smoke.report([rec()], "t")["ok"] is True


def test_table_lines_line_up_and_cut_long_details():
    lines = smoke.table([rec(detail="x" * 300), rec(layer="storage", check="s3 round trip", detail="a\nb")], 40)
    assert lines[0].split(" | ") == ["layer  ", "check        ", "host   ", "status", "detail"]
    assert set(lines[1]) <= {"-", "+"}
    assert lines[2].endswith("x" * 37 + "...")
    assert lines[3].endswith("| a b")
    assert len({line.index("|") for line in lines if "|" in line}) == 1


def test_table_of_nothing_is_a_header():
    assert smoke.table([]) == ["layer | check | host | status | detail", "------+-------+------+--------+-------"]


def test_write_atomically_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "report.json"
    smoke.write_atomically(str(path), {"a": 1})
    smoke.write_atomically(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(path.parent) == ["report.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_write_atomically_cleans_up_when_the_document_is_not_json(tmp_path):
    path = tmp_path / "report.json"
    with pytest.raises(TypeError):
        smoke.write_atomically(str(path), {"a": object()})
    assert os.listdir(tmp_path) == []


TINY = [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
PDF = [
    {"name": "pdf_base64", "datatype": "BYTES", "shape": [1]},
    {"name": "prompt", "datatype": "BYTES", "shape": [1]},
]


def test_plan_without_samples_fills_the_shape():
    assert smoke.plan_inputs("tiny", TINY) == [{"name": "x", "datatype": "FP32", "shape": [1, 4], "values": [0] * 4}]
    plan = smoke.plan_inputs("pdf", PDF, optional=["prompt"])
    assert plan == [{"name": "pdf_base64", "datatype": "BYTES", "shape": [1], "values": ["oceanid-smoke"]}]
    assert smoke.plan_inputs("b", [{"name": "m", "datatype": "BOOL", "shape": [2]}])[0]["values"] == [False, False]


def test_plan_with_samples():
    plan = smoke.plan_inputs("tiny", TINY, {"x": [[1.0, 2.0, 3.0, 4.0]]})
    assert plan[0]["values"] == [1.0, 2.0, 3.0, 4.0]
    assert smoke.plan_inputs("tiny", TINY, {"x": 0.5})[0]["values"] == [0.5] * 4
    plan = smoke.plan_inputs("pdf", PDF, {"pdf_base64": "JVBERi0=", "prompt": "p"}, optional=["prompt"])
    assert [item["values"] for item in plan] == [["JVBERi0="], ["p"]]


@pytest.mark.parametrize(
    ("inputs", "samples", "message"),
    [
        (TINY, {"x": [1.0, 2.0]}, r"the sample of input x has 2 value\(s\); its shape \[1, 4\] needs 4"),
        (TINY, {"y": 1}, r"sample input\(s\) y are not inputs of the model \(it has x\)"),
        ([{"name": "z", "datatype": "BF16", "shape": [1]}], {}, "input z has datatype BF16"),
    ],
)
def test_plan_names_what_does_not_fit(inputs, samples, message):
    with pytest.raises(smoke.SmokeError, match=message):
        smoke.plan_inputs("m", inputs, samples)


def test_describe_output_previews():
    assert smoke.describe_output("y", "FP32", (1, 3), [[0.123456, 2.0, 3.0]]) == "y FP32[1, 3] = [0.1235, 2.0, 3.0]"
    text = smoke.describe_output("result", "BYTES", (1,), [b'{"text": "' + b"a" * 100 + b'"}'], limit=20)
    assert text.startswith("result BYTES[1] = ") and text.endswith("...")


def test_expectations():
    outputs = {"result": [b'{"text": "oceanid smoke check"}']}
    assert smoke.expectation_problems({"result": "oceanid smoke check"}, outputs) == []
    assert smoke.expectation_problems({"result": "other"}, outputs) == ["output result does not contain 'other'"]
    assert smoke.expectation_problems({"y": "1"}, outputs) == ["output y is missing"]
    assert smoke.expectation_problems(None, outputs) == []
