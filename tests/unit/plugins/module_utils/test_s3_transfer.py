# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transfer engine's pure parts: SigV4 (checked against botocore's signer), manifests, plans, spans,
the atomic exchange, and a hydrate against a small in-process S3 stub (the real-server cases are in
tests/integration/s3 against SeaweedFS)."""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from unittest import mock

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import s3_transfer as t
from tests.support.s3_stub import StubS3, tree

FIXED_NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def frozen_clock(monkeypatch):
    class FixedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return FIXED_NOW

    monkeypatch.setattr(t.datetime, "datetime", FixedDatetime)


def endpoint(url="http://127.0.0.1:8333", **kwargs):
    return t.S3Endpoint(url, "eu-west-1", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", **kwargs)


# --- SigV4 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,key,query,body",
    [
        ("GET", "models/ner/1/model.onnx", {}, b""),
        ("GET", "", {"list-type": "2", "prefix": "models/a b/", "continuation-token": "x/y+z="}, b""),
        ("PUT", "models/ner/1/with space & plus+.txt", {"partNumber": "3", "uploadId": "u~1"}, b"some bytes"),
        ("POST", "models/ner/1/big.bin", {"uploads": ""}, b""),
    ],
)
def test_signature_matches_botocore(frozen_clock, method, key, query, body):
    """Our Authorization header is byte for byte what botocore's S3 SigV4 signer computes."""
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    ep = endpoint()
    client = t.S3Client(ep)
    headers = {}
    # botocore signs the payload's digest over plain HTTP (our client sends UNSIGNED-PAYLOAD for GETs,
    # which S3 accepts; what is compared here is the canonical request and the key derivation).
    payload = hashlib.sha256(body).hexdigest()
    path = ep.path("bucket", key)
    canonical_query = client._sign(method, "bucket", path, query, headers, payload)  # pylint: disable=protected-access

    url = "http://127.0.0.1:8333" + path + ("?" + canonical_query if canonical_query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={"x-amz-content-sha256": payload})
    with mock.patch("botocore.auth.datetime") as botocore_datetime:
        botocore_datetime.datetime.now.return_value = FIXED_NOW.replace(tzinfo=None)
        botocore_datetime.datetime.utcnow.return_value = FIXED_NOW.replace(tzinfo=None)
        botocore_datetime.timezone = datetime.timezone
        botocore_auth.S3SigV4Auth(
            Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), "s3", "eu-west-1"
        ).add_auth(request)
    ours = re.search(r"Signature=([0-9a-f]+)", headers["Authorization"]).group(1)
    theirs = re.search(r"Signature=([0-9a-f]+)", request.headers["Authorization"]).group(1)
    assert ours == theirs


def test_virtual_hosted_addressing_for_aws():
    ep = t.S3Endpoint(None, "us-east-2", "AK", "SK")
    assert ep.addressing_style == "virtual"
    assert ep.host_header("assets") == "assets.s3.us-east-2.amazonaws.com"
    assert ep.path("assets", "models/x y") == "/models/x%20y"


def test_path_addressing_for_an_endpoint():
    ep = endpoint("http://seaweed1:8333")
    assert ep.host_header("assets") == "seaweed1:8333"
    assert ep.path("assets", "models/a+b") == "/assets/models/a%2Bb"


@pytest.mark.parametrize("url", ["seaweed1:8333", "ftp://host", "http://"])
def test_bad_endpoint_url_is_named(url):
    with pytest.raises(t.TransferError, match="endpoint_url"):
        endpoint(url)


def test_credentials_must_come_in_pairs():
    with pytest.raises(t.TransferError, match="both access_key and secret_key"):
        t.resolve_credentials("AK", None)


def test_credentials_from_environment(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "envkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    assert t.resolve_credentials() == ("envkey", "envsecret", "tok")


# --- manifests, plans, spans ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "files,message",
    [
        ([{"path": "../etc/passwd", "size": 1, "sha256": "x"}], "escapes"),
        ([{"path": "/abs", "size": 1, "sha256": "x"}], "absolute"),
        ([{"path": "a", "size": 1, "sha256": "x"}, {"path": "a", "size": 1, "sha256": "x"}], "repeats"),
        ([{"path": "a", "size": "1", "sha256": "x"}], "needs path, size and sha256"),
    ],
)
def test_manifest_validation_names_the_problem(files, message):
    with pytest.raises(t.SourceError, match=message):
        t._validate_manifest({"files": files}, "s3://b/manifests/models/m.json")  # pylint: disable=protected-access


def test_hash_file_parts(tmp_path):
    data = os.urandom(2500)
    (tmp_path / "f").write_bytes(data)
    whole, parts = t.hash_file(tmp_path / "f", 1000)
    assert whole == hashlib.sha256(data).hexdigest()
    assert parts == [hashlib.sha256(data[i : i + 1000]).hexdigest() for i in (0, 1000, 2000)]
    (tmp_path / "empty").write_bytes(b"")
    assert t.hash_file(tmp_path / "empty", 1000) == (t.EMPTY_SHA256, [t.EMPTY_SHA256])


def wanted_for(path, data, part_size):
    whole, parts = t.hash_file(path, part_size) if os.path.exists(path) else (hashlib.sha256(data).hexdigest(), None)
    return t._Wanted(os.path.basename(path), "models/m/" + os.path.basename(path), len(data), whole, parts)  # pylint: disable=protected-access


def test_plan_keeps_recorded_files_and_fetches_changed_ones(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "same").write_bytes(b"same")
    (dest / "changed").write_bytes(b"old!")
    (dest / "extra").write_bytes(b"x")
    st_same, st_changed = os.stat(dest / "same"), os.stat(dest / "changed")
    state = {
        "files": {
            "same": {"size": 4, "mtime_ns": st_same.st_mtime_ns, "sha256": hashlib.sha256(b"same").hexdigest()},
            "changed": {"size": 4, "mtime_ns": st_changed.st_mtime_ns, "sha256": hashlib.sha256(b"old!").hexdigest()},
        }
    }
    files = [
        t._Wanted("same", "k/same", 4, hashlib.sha256(b"same").hexdigest()),  # pylint: disable=protected-access
        t._Wanted("changed", "k/changed", 4, hashlib.sha256(b"new!").hexdigest()),  # pylint: disable=protected-access
        t._Wanted("new", "k/new", 3, hashlib.sha256(b"new").hexdigest()),
    ]  # pylint: disable=protected-access
    plan = t.plan_hydrate(files, str(dest), state, delete_extra=False, part_size=1024, verification="sha256")
    assert [w.path for w in plan["keep"]] == ["same"]
    assert [w.path for w in plan["fetch"]] == ["changed", "new"]
    assert plan["carry"] == ["extra"] and plan["delete"] == []
    plan = t.plan_hydrate(files, str(dest), state, delete_extra=True, part_size=1024, verification="sha256")
    assert plan["delete"] == ["extra"] and plan["carry"] == []


def test_plan_hashes_an_unrecorded_file_instead_of_fetching_it(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "weights").write_bytes(b"w" * 100)
    files = [t._Wanted("weights", "k/weights", 100, hashlib.sha256(b"w" * 100).hexdigest())]  # pylint: disable=protected-access
    plan = t.plan_hydrate(files, str(dest), None, delete_extra=False, part_size=64, verification="sha256")
    assert [w.path for w in plan["keep"]] == ["weights"] and plan["fetch"] == []


def test_spans_group_parts_and_skip_done_ones():
    download = t._Download(
        None, "b", "/nonexistent", part_size=10, concurrency=1, verification="sha256", request_size=30
    )  # pylint: disable=protected-access
    wanted = t._Wanted("f", "k/f", 95)  # pylint: disable=protected-access
    spans = download._spans(wanted, done={1, 5})  # pylint: disable=protected-access
    assert [[p[0] for p in span] for span in spans] == [[0], [2, 3, 4], [6, 7, 8], [9]]
    assert spans[-1][-1][2] == 95


def test_exchange_swaps_two_directories(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from-a").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "from-b").write_text("b")
    if not t._exchange(str(tmp_path / "a"), str(tmp_path / "b")):  # pylint: disable=protected-access
        pytest.skip("renameat2(RENAME_EXCHANGE) is not supported on this filesystem")
    assert os.listdir(tmp_path / "a") == ["from-b"] and os.listdir(tmp_path / "b") == ["from-a"]


# --- hydrate against a stub S3 -----------------------------------------------------------------------


@pytest.fixture
def stub():
    server = StubS3()
    yield server
    server.shutdown()


def client_for(stub_server):
    return t.S3Client(t.S3Endpoint(stub_server.url, "us-east-1", "AK", "SK"), retries=0)


def test_hydrate_publishes_verifies_and_then_makes_no_get(stub, tmp_path):
    files = {"model.onnx": b"0123456789abcdef", "sub dir/vocab.txt": b"hello", "empty": b""}
    stub.put_model("m", files)
    dest = tmp_path / "repo" / "m"
    result = t.hydrate(client_for(stub), "bucket", str(dest), model_key="m", concurrency=4)
    assert result["changed"] and result["files_fetched"] == 3 and result["verification"] == "sha256"
    assert tree(dest) == files
    assert sorted(os.listdir(tmp_path / "repo")) == [".m.oceanid-state.json", "m"]  # no staging or partial left
    stub.requests.clear()
    again = t.hydrate(client_for(stub), "bucket", str(dest), model_key="m")
    assert not again["changed"] and [r[0] for r in stub.requests] == ["HEAD"]


def test_hydrate_fails_on_bad_bytes_and_leaves_dest_as_it_was(stub, tmp_path):
    stub.put_model("m", {"w.bin": b"AAAAbbbbCCCC"})
    dest = tmp_path / "m"
    t.hydrate(client_for(stub), "bucket", str(dest), model_key="m")
    before = tree(dest)
    stub.put_model("m", {"w.bin": b"AAAAbbbbDDDD"})
    stub.objects["models/m/w.bin"] = b"AAAAbbbbXXXX"  # the object no longer matches its manifest
    with pytest.raises(t.VerificationError) as err:
        t.hydrate(client_for(stub), "bucket", str(dest), model_key="m")
    assert err.value.path == "w.bin" and "w.bin" in str(err.value)
    assert (
        err.value.expected == hashlib.sha256(b"DDDD").hexdigest()
        and err.value.actual == hashlib.sha256(b"XXXX").hexdigest()
    )
    assert tree(dest) == before


def test_hydrate_check_only_reports_the_plan(stub, tmp_path):
    stub.put_model("m", {"a": b"aaaa", "b": b"bb"})
    result = t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="m", check_only=True)
    assert result["changed"] and sorted(result["plan"]["fetch"]) == ["a", "b"] and result["plan"]["bytes"] == 6
    assert not (tmp_path / "m").exists() and os.listdir(tmp_path) == []


def test_hydrate_refuses_when_space_is_short(stub, tmp_path, monkeypatch):
    stub.put_model("m", {"a": b"aaaa"})
    monkeypatch.setattr(t, "_free_bytes", lambda path: 10)
    with pytest.raises(t.SpaceError, match="nothing was written"):
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="m")
    assert os.listdir(tmp_path) == []


def test_hydrate_prefix_mode_is_weaker_and_says_so(stub, tmp_path):
    stub.objects["raw/x/a.txt"] = b"abc"
    result = t.hydrate(client_for(stub), "bucket", str(tmp_path / "x"), prefix="raw/x/")
    assert result["verification"] == "size+etag" and tree(tmp_path / "x") == {"a.txt": b"abc"}


def test_missing_manifest_is_a_clear_error(stub, tmp_path):
    with pytest.raises(t.SourceError, match="ingest the model first"):
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="nope")


def test_list_versions(stub):
    stub.objects.update(
        {
            "manifests/models/ner/1.json": b"{}",
            "manifests/models/ner/12.json": b"{}",
            "manifests/models/ner/latest.json": b"{}",
            "models/ner/3/model.onnx": b"x",
            "models/ner/012/x": b"x",
        }
    )
    assert t.list_versions(client_for(stub), "bucket", "ner") == [(1, "manifest"), (3, "prefix"), (12, "manifest")]


def test_dest_that_is_a_file_is_refused(stub, tmp_path):
    stub.put_model("m", {"a": b"aaaa"})
    (tmp_path / "m").write_text("not a directory")
    with pytest.raises(t.TransferError, match="not a directory"):
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="m")
    assert (tmp_path / "m").read_text() == "not a directory"
