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
import shutil
import subprocess
import sys
from unittest import mock

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import local_tree as lt
from ansible_collections.oceanid.fleet.plugins.module_utils import model_manifest as mm
from ansible_collections.oceanid.fleet.plugins.module_utils import s3_client as c
from ansible_collections.oceanid.fleet.plugins.module_utils import s3_model_transfer as t
from tests.support.s3_stub import StubS3, tree

FIXED_NOW = datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.fixture
def frozen_clock(monkeypatch):
    class FixedDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return FIXED_NOW

    monkeypatch.setattr(c.datetime, "datetime", FixedDatetime)


def endpoint(url="http://127.0.0.1:8333", **kwargs):
    return c.S3Endpoint(url, "eu-west-1", "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", **kwargs)


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
    client = c.S3Client(ep)
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
    ep = c.S3Endpoint(None, "us-east-2", "AK", "SK")
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
        c.resolve_credentials("AK", None)


def test_credentials_from_environment(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "envkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "tok")
    assert c.resolve_credentials() == ("envkey", "envsecret", "tok")


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
        mm.validate_manifest({"files": files}, "s3://b/manifests/models/m.json")  # pylint: disable=protected-access


def test_hash_file_parts(tmp_path):
    data = os.urandom(2500)
    (tmp_path / "f").write_bytes(data)
    whole, parts = mm.hash_file(tmp_path / "f", 1000)
    assert whole == hashlib.sha256(data).hexdigest()
    assert parts == [hashlib.sha256(data[i : i + 1000]).hexdigest() for i in (0, 1000, 2000)]
    (tmp_path / "empty").write_bytes(b"")
    assert mm.hash_file(tmp_path / "empty", 1000) == (c.EMPTY_SHA256, [c.EMPTY_SHA256])


def wanted_for(path, data, part_size):
    whole, parts = mm.hash_file(path, part_size) if os.path.exists(path) else (hashlib.sha256(data).hexdigest(), None)
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
    if not lt.exchange(str(tmp_path / "a"), str(tmp_path / "b")):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not supported on this filesystem")
    assert os.listdir(tmp_path / "a") == ["from-b"] and os.listdir(tmp_path / "b") == ["from-a"]


# --- hydrate against a stub S3 -----------------------------------------------------------------------


@pytest.fixture
def stub():
    server = StubS3()
    yield server
    server.shutdown()


def client_for(stub_server):
    return c.S3Client(c.S3Endpoint(stub_server.url, "us-east-1", "AK", "SK"), retries=0)


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
    monkeypatch.setattr(lt, "free_bytes", lambda path: 10)
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
    assert mm.list_versions(client_for(stub), "bucket", "ner") == [(1, "manifest"), (3, "prefix"), (12, "manifest")]


def test_dest_that_is_a_file_is_refused(stub, tmp_path):
    stub.put_model("m", {"a": b"aaaa"})
    (tmp_path / "m").write_text("not a directory")
    with pytest.raises(t.TransferError, match="not a directory"):
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="m")
    assert (tmp_path / "m").read_text() == "not a directory"


def test_a_missing_bucket_is_named_not_the_manifest(stub, tmp_path):
    stub.bucket_exists = False
    with pytest.raises(t.SourceError, match="bucket bucket does not exist") as err:
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="m")
    assert "ingest" not in str(err.value)


def test_a_refused_head_says_credentials_or_signature(stub, tmp_path):
    stub.refuse = True
    with pytest.raises(t.SourceError, match="HTTP 403: the server refused the credentials or the signature"):
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "m"), model_key="m")


@pytest.mark.parametrize(
    "mounts,message",
    [
        (["vol"], "vol is a mount point .*nothing was written"),
        (["vol/1"], "vol/1 inside dest .* is a mount point .*nothing was written"),
    ],
)
def test_a_mount_point_at_or_in_dest_is_refused_before_any_request(stub, tmp_path, monkeypatch, mounts, message):
    (tmp_path / "vol" / "1").mkdir(parents=True)
    monkeypatch.setattr(lt, "mounts_at_or_under", lambda path: [str(tmp_path / m) for m in mounts])
    with pytest.raises(t.TransferError, match=message):
        t.hydrate(client_for(stub), "bucket", str(tmp_path / "vol"), model_key="m")
    assert stub.requests == [] and sorted(os.listdir(tmp_path)) == ["vol"]


def test_mounts_at_or_under(tmp_path, monkeypatch):
    assert lt.mounts_at_or_under("/") and lt.mounts_at_or_under("/")[0] == "/"
    assert lt.mounts_at_or_under(str(tmp_path)) == []
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 0:5 / %s/a\\040b rw - tmpfs tmpfs rw\n"
        "3 1 8:1 /x %s/c rw - ext4 /dev/sda1 rw\n" % (tmp_path, tmp_path)
    )
    real_open = open
    monkeypatch.setattr(
        "builtins.open", lambda path, *a, **k: real_open(mountinfo if path == "/proc/self/mountinfo" else path, *a, **k)
    )
    assert lt.mounts_at_or_under(str(tmp_path)) == [str(tmp_path / "a b"), str(tmp_path / "c")]
    assert lt.mounts_at_or_under(str(tmp_path / "c")) == [str(tmp_path / "c")]


def test_require_same_filesystem(tmp_path, monkeypatch):
    t.require_same_filesystem(str(tmp_path / "a" / "b"), str(tmp_path / "c"), "staging")
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return os.stat_result((*st[:2], st.st_dev + 1, *st[3:])) if str(path) == str(tmp_path / "c") else st

    (tmp_path / "c").mkdir()
    monkeypatch.setattr(os, "stat", fake_stat)
    with pytest.raises(t.TransferError, match="staging .* are on different filesystems"):
        t.require_same_filesystem(str(tmp_path / "a" / "b"), str(tmp_path / "c"), "staging")


def test_the_engine_files_work_as_plain_modules_beside_the_puller(stub, tmp_path):
    """The puller installs s3_client.py, model_manifest.py, local_tree.py and s3_model_transfer.py beside itself and imports
    them as plain modules: no package, no ansible_collections (an installed collection must not be used)."""
    stub.put_model("m", {"a.bin": b"aaaa"})
    beside = tmp_path / "opt"
    beside.mkdir()
    for module in (c, mm, lt, t):
        shutil.copy(module.__file__, beside)
    program = (
        "import sys; import s3_client, s3_model_transfer; "
        "client = s3_client.S3Client(s3_client.S3Endpoint(%r, 'us-east-1', 'AK', 'SK')); "
        "result = s3_model_transfer.hydrate(client, 'bucket', %r, model_key='m'); "
        "assert result['changed'] and result['files_fetched'] == 1, result; "
        "assert not [m for m in sys.modules if m.startswith('ansible')], sorted(sys.modules)"
    ) % (stub.url, str(tmp_path / "dest"))
    subprocess.run([sys.executable, "-c", program], cwd=str(beside), check=True, env={"PATH": os.environ["PATH"]})
    assert tree(tmp_path / "dest") == {"a.bin": b"aaaa"}
