# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model transfer engine (module_utils/s3_client, model_manifest, local_tree, s3_model_transfer,
s3_model_upload) and its two modules against a real S3 server.

Every test gets its own bucket on the module's SeaweedFS; the engine talks to it through the counting
proxy, so tests can prove which requests were (not) made and inject corruption and interruptions.
Files are written straight to SeaweedFS with boto3 when a test changes S3 behind the engine's back.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import s3_model_transfer, s3_model_upload
from tests.integration.s3.s3_helpers import (
    MiB,
    beside,
    digests,
    part_digests,
    run_module,
    sha256_file,
    snapshot,
    write_tree,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
ENGINE = REPO_ROOT / "tests" / "support" / "s3_cli.py"

MODEL = {
    "config.pbtxt": b'name: "m"\nbackend: "python"\n',
    "1/model.onnx": 20 * MiB + 12345,  # several parts, multipart upload
    "1/tokenizer.json": 300_000,
    "1/vocab.txt": 4096,
}


def _model(tmp_path: Path, files: dict | None = None) -> Path:
    return write_tree(tmp_path / "src", dict(MODEL if files is None else files))


def _state_name(dest: Path) -> str:
    return f".{dest.name}.oceanid-state.json"


def _hydrated(s3, tmp_path: Path) -> tuple[Path, Path]:
    """The standard model ingested and hydrated once: (src, dest)."""
    src = _model(tmp_path)
    s3.ingest(src)
    dest = tmp_path / "dest"
    s3.hydrate(dest)
    return src, dest


def _assert_clean_beside(dest: Path) -> None:
    """After a successful run only the state record sits beside dest: no partial area, no staging."""
    assert beside(dest) == [_state_name(dest)]


# ---------------------------------------------------------------------------------------------------
# ingest, then hydrate
# ---------------------------------------------------------------------------------------------------


def test_ingest_then_hydrate_round_trip(s3, tmp_path):
    src = _model(tmp_path)
    result = s3.ingest(src, label="NER", tags={"workload": "ner", "gpu": "any"})
    assert result["changed"] is True
    assert sorted(result["uploaded"]) == sorted(MODEL) and result["skipped"] == []
    assert result["manifest_key"] == "manifests/models/m1.json"
    assert result["bytes_uploaded"] == sum(os.path.getsize(src / p) for p in MODEL)

    # The manifest comes last: every object upload finished before its PUT began.
    writes = [r for r in s3.proxy.requests if r.kind in ("PUT", "POST")]
    assert writes[-1].key == "manifests/models/m1.json" and writes[-1].method == "PUT"
    assert all(r.status == 200 for r in writes)
    assert all(r.key.startswith("models/m1/") for r in writes[:-1])
    assert any(r.kind == "POST" and r.key == "models/m1/1/model.onnx" for r in writes), "20 MiB should go multipart"

    manifest = s3.manifest()
    assert manifest["format"] == "oceanid.model-manifest/1"
    assert (manifest["key"], manifest["label"], manifest["tags"]) == ("m1", "NER", {"workload": "ner", "gpu": "any"})
    assert manifest["created"] and manifest["part_size"] == 8 * MiB
    by_path = {entry["path"]: entry for entry in manifest["files"]}
    assert sorted(by_path) == sorted(MODEL)
    for relpath, entry in by_path.items():
        data = (src / relpath).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["parts"] == part_digests(data, manifest["part_size"])

    s3.proxy.reset()
    dest = tmp_path / "dest"
    result = s3.hydrate(dest)
    assert result["changed"] is True
    assert result["files_fetched"] == len(MODEL) and result["files_kept"] == 0
    assert result["bytes_fetched"] == sum(entry["size"] for entry in manifest["files"])
    assert result["verification"] == "sha256"
    assert result["seconds"] > 0 and result["mb_per_s"] > 0
    assert digests(dest) == digests(src)
    _assert_clean_beside(dest)
    assert s3.proxy.keys_fetched() <= {f"models/m1/{p}" for p in MODEL} | {"manifests/models/m1.json"}


def test_rehydrate_unchanged_makes_no_get(s3, tmp_path):
    src, dest = _hydrated(s3, tmp_path)
    before = snapshot(dest)

    s3.proxy.reset()
    result = s3.hydrate(dest)
    assert result["changed"] is False
    assert (result["files_fetched"], result["bytes_fetched"], result["files_kept"]) == (0, 0, len(MODEL))
    assert s3.proxy.methods["GET"] == 0, f"an unchanged model must cost no GET at all: {s3.proxy.requests}"
    assert set(s3.proxy.methods) <= {"HEAD"}
    assert snapshot(dest) == before  # not even re-published (same inodes)
    _assert_clean_beside(dest)


def test_one_changed_file_is_the_only_one_fetched(s3, tmp_path):
    src, dest = _hydrated(s3, tmp_path)
    before = snapshot(dest)

    (src / "1/tokenizer.json").write_bytes(os.urandom(300_000))  # same size, other bytes
    result = s3.ingest(src)
    assert result["uploaded"] == ["1/tokenizer.json"]
    s3.proxy.reset()
    result = s3.hydrate(dest)
    assert result["changed"] is True
    assert (result["files_fetched"], result["files_kept"], result["bytes_fetched"]) == (1, len(MODEL) - 1, 300_000)
    assert result["plan"]["fetch"] == ["1/tokenizer.json"]
    assert s3.proxy.keys_fetched() <= {"models/m1/1/tokenizer.json", "manifests/models/m1.json"}
    assert s3.proxy.object_gets("models/m1/1/tokenizer.json") >= 1
    assert s3.proxy.bytes_relayed("models/m1/1/tokenizer.json") == 300_000
    assert digests(dest) == digests(src)
    after = snapshot(dest)
    for relpath in (
        "config.pbtxt",
        "1/model.onnx",
        "1/vocab.txt",
    ):  # kept files are the same inodes (linked, not copied)
        assert after[relpath] == before[relpath]
    assert after["1/tokenizer.json"][2] == sha256_file(src / "1/tokenizer.json")


# ---------------------------------------------------------------------------------------------------
# Corruption
# ---------------------------------------------------------------------------------------------------


def test_object_changed_behind_the_manifest_fails_and_leaves_dest_as_it_was(s3, tmp_path):
    src, dest = _hydrated(s3, tmp_path)
    (src / "1/model.onnx").write_bytes(os.urandom(20 * MiB + 12345))  # v2 of the weights, ingested properly...
    s3.ingest(src)
    v2 = s3.manifest()["files"]
    v2_entry = next(entry for entry in v2 if entry["path"] == "1/model.onnx")
    bad = os.urandom(20 * MiB + 12345)  # ...then replaced in S3 by other bytes
    s3.boto.put_object(Bucket=s3.bucket, Key="models/m1/1/model.onnx", Body=bad)
    assert s3.manifest()["files"] == v2
    before, state_before = snapshot(dest), (dest.parent / _state_name(dest)).read_bytes()

    with pytest.raises(s3_model_transfer.VerificationError) as failure:
        s3.hydrate(dest)
    error = failure.value
    assert error.path == "1/model.onnx"
    assert error.expected != error.actual
    assert error.expected in [v2_entry["sha256"]] + v2_entry["parts"]
    assert error.actual in [hashlib.sha256(bad).hexdigest()] + part_digests(bad, 8 * MiB)
    message = str(error)
    assert "1/model.onnx" in message and error.expected in message and error.actual in message

    assert snapshot(dest) == before, "dest must stay exactly as it was"
    assert (dest.parent / _state_name(dest)).read_bytes() == state_before
    assert not [name for name in beside(dest) if ".staging-" in name or ".old-" in name]


def test_bytes_corrupted_in_transit_fail_and_publish_nothing(s3, tmp_path):
    src = _model(tmp_path)
    s3.ingest(src)
    s3.proxy.corrupt_keys = {"models/m1/1/vocab.txt"}
    dest = tmp_path / "dest"
    with pytest.raises(s3_model_transfer.VerificationError) as failure:
        s3.hydrate(dest)
    assert failure.value.path == "1/vocab.txt"
    assert failure.value.expected == hashlib.sha256((src / "1/vocab.txt").read_bytes()).hexdigest()
    assert failure.value.expected in str(failure.value) and failure.value.actual in str(failure.value)
    assert not dest.exists()
    assert not [name for name in beside(dest) if ".staging-" in name or ".old-" in name]

    s3.proxy.heal()
    s3.hydrate(dest)
    assert digests(dest) == digests(src)
    _assert_clean_beside(dest)


# ---------------------------------------------------------------------------------------------------
# Interrupted downloads
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["server-killed", "connection-dropped"])
def test_interrupted_download_fails_cleanly_then_resumes_without_refetching(s3, tmp_path, how):
    big = 160 * MiB
    src = _model(tmp_path, {"weights/big.bin": big, "config.pbtxt": b"x", "tokenizer.json": 70_000})
    s3.ingest(src)
    dest = tmp_path / "dest"
    cut_at = 80 * MiB
    if how == "server-killed":
        s3.proxy.on_bytes(cut_at, s3.seaweed.kill)  # SIGKILL weed once 80 MiB went through
    else:
        s3.proxy.fail_after_bytes = cut_at  # hang up, then refuse every request

    with pytest.raises(s3_model_transfer.TransferError) as failure:
        s3.hydrate(dest, concurrency=2)
    message = str(failure.value)
    assert s3.proxy.url in message, f"the error should name the endpoint: {message}"
    assert "models/m1/" in message, f"the error should name the object: {message}"
    assert not dest.exists(), "nothing may be published by a failed run"
    fetched_before = s3.proxy.bytes_relayed()
    assert cut_at <= fetched_before < big

    if how == "server-killed":
        assert not s3.seaweed.running
        s3.seaweed.start()
    s3.proxy.heal()
    s3.proxy.reset()
    result = s3.hydrate(dest, concurrency=2)
    assert result["changed"] is True
    assert digests(dest) == digests(src)
    refetched = s3.proxy.bytes_relayed("models/m1/weights/big.bin")
    assert refetched < big, "verified parts from the first run must not be fetched again"
    assert refetched <= big - 32 * MiB, f"only {big - refetched} bytes of the first run's {fetched_before} were kept"
    assert result["bytes_fetched"] < big + 70_001
    _assert_clean_beside(dest)


# ---------------------------------------------------------------------------------------------------
# Free space
# ---------------------------------------------------------------------------------------------------


def test_not_enough_space_is_refused_before_writing(s3, tmp_path, small_filesystem):
    src = _model(tmp_path, {"weights.bin": 80 * MiB, "config.pbtxt": b"y"})
    s3.ingest(src)
    dest = small_filesystem / "model"
    write_tree(dest, {"old/weights.bin": 1000, "config.pbtxt": b"old"})
    before = snapshot(dest)
    free_before = os.statvfs(small_filesystem).f_bfree
    s3.proxy.reset()

    with pytest.raises(s3_model_transfer.SpaceError) as failure:
        s3.hydrate(dest)
    assert str(dest) in str(failure.value)
    assert snapshot(dest) == before
    assert sorted(os.listdir(small_filesystem)) == ["model"], "no staging, partial or state files may be written"
    assert os.statvfs(small_filesystem).f_bfree == free_before
    assert s3.proxy.object_gets() - s3.proxy.object_gets("manifests/models/m1.json") == 0


# ---------------------------------------------------------------------------------------------------
# Names, sizes
# ---------------------------------------------------------------------------------------------------

AWKWARD = {
    "dir with spaces/file name.bin": 5000,
    "nested/a/b/c/d/deep.txt": b"deep\n",
    "empty.txt": b"",
    "empty dir/also empty": b"",
    "ünïcødé/naïve.json": b'{"x": 1}',
    "plus+sign & ampersand=eq.txt": b"+&=",
    "100% done.txt": b"%",
    "tilde~x.bin": 10,
}


def test_awkward_names_nested_directories_and_empty_files(s3, tmp_path):
    src = _model(tmp_path, AWKWARD)
    s3.ingest(src)
    listed = {o["Key"] for o in s3.boto.list_objects_v2(Bucket=s3.bucket, Prefix="models/m1/")["Contents"]}
    assert listed == {f"models/m1/{p}" for p in AWKWARD}
    dest = tmp_path / "dest dir"
    result = s3.hydrate(dest)
    assert result["files_fetched"] == len(AWKWARD)
    assert digests(dest) == digests(src)
    assert (dest / "empty.txt").stat().st_size == 0 and (dest / "empty dir/also empty").stat().st_size == 0
    s3.proxy.reset()
    assert s3.hydrate(dest)["changed"] is False
    assert s3.proxy.methods["GET"] == 0


def test_file_over_one_gib(s3, tmp_path):
    size = 1024 * MiB + 4096 + 7
    big = tmp_path / "src" / "weights" / "huge.bin"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as handle:  # sparse, with real bytes at the start, the middle and the end
        handle.truncate(size)
        for offset in (0, 300 * MiB + 5, size - 3 * MiB):
            handle.seek(offset)
            handle.write(os.urandom(MiB))
    (tmp_path / "src" / "config.pbtxt").write_bytes(b"z")
    result = s3.ingest(tmp_path / "src")
    assert sorted(result["uploaded"]) == ["config.pbtxt", "weights/huge.bin"]
    key = "models/m1/weights/huge.bin"
    part_puts = [r for r in s3.proxy.requests if r.kind == "PUT" and r.key == key and "partNumber" in r.query]
    assert len(part_puts) == math.ceil(size / (8 * MiB)), "a file over 1 GiB goes up in 8 MiB parts"
    assert [r.kind for r in s3.proxy.requests if r.kind == "POST" and r.key == key] == ["POST", "POST"]
    assert s3.boto.head_object(Bucket=s3.bucket, Key=key)["ContentLength"] == size

    dest = tmp_path / "dest"
    result = s3.hydrate(dest)
    assert result["bytes_fetched"] == size + 1
    assert (dest / "weights/huge.bin").stat().st_size == size
    assert sha256_file(dest / "weights/huge.bin") == sha256_file(big)


# ---------------------------------------------------------------------------------------------------
# Prefix mode, check mode, delete_extra
# ---------------------------------------------------------------------------------------------------


def test_prefix_without_manifest_is_verified_by_size_and_etag(s3, tmp_path):
    from boto3.s3.transfer import TransferConfig  # pylint: disable=import-outside-toplevel

    src = write_tree(tmp_path / "src", {"a.bin": 1000, "sub dir/b.bin": 3 * MiB, "multi.bin": 12 * MiB, "empty": b""})
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        s3.boto.upload_file(
            str(path),
            s3.bucket,
            f"raw/m2/{path.relative_to(src)}",
            Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB),
        )
    assert "-" in s3.boto.head_object(Bucket=s3.bucket, Key="raw/m2/multi.bin")["ETag"]  # a multipart ETag
    dest = tmp_path / "dest"
    result = s3.hydrate(dest, prefix="raw/m2/")
    assert result["verification"] == "size+etag"
    assert result["files_fetched"] == 4 and result["changed"] is True
    assert digests(dest) == digests(src)
    s3.proxy.reset()
    again = s3.hydrate(dest, prefix="raw/m2/")
    assert again["changed"] is False and again["verification"] == "size+etag"
    assert s3.proxy.object_gets() == 0


def test_check_mode_reports_the_plan_and_touches_nothing(s3, tmp_path):
    src = _model(tmp_path)
    s3.ingest(src)
    dest = tmp_path / "dest"
    s3.proxy.reset()
    plan = s3.hydrate(dest, check_only=True)
    assert plan["changed"] is True
    assert sorted(plan["plan"]["fetch"]) == sorted(MODEL) and plan["plan"]["delete"] == []
    assert plan["plan"]["bytes"] == sum(os.path.getsize(src / p) for p in MODEL)
    assert plan["files_fetched"] == 0 and plan["bytes_fetched"] == 0
    assert not dest.exists() and beside(dest) == []
    assert s3.proxy.keys_fetched() <= {"manifests/models/m1.json"}

    s3.hydrate(dest)
    (src / "1/vocab.txt").write_bytes(os.urandom(4096))
    s3.ingest(src)
    (dest / "stale.bin").write_bytes(b"old")
    before = snapshot(dest)
    state_before = (dest.parent / _state_name(dest)).read_bytes()
    plan = s3.hydrate(dest, delete_extra=True, check_only=True)
    assert plan["changed"] is True
    assert plan["plan"] == {"fetch": ["1/vocab.txt"], "delete": ["stale.bin"], "bytes": 4096}
    assert snapshot(dest) == before
    assert (dest.parent / _state_name(dest)).read_bytes() == state_before
    _assert_clean_beside(dest)


def test_delete_extra_removes_files_the_source_lacks_and_only_then(s3, tmp_path):
    src, dest = _hydrated(s3, tmp_path)
    write_tree(dest, {"stale.bin": 100, "stale dir/old.txt": b"old"})

    kept = s3.hydrate(dest)
    assert kept["changed"] is False and kept["files_deleted"] == 0
    assert (dest / "stale.bin").is_file() and (dest / "stale dir/old.txt").is_file()

    result = s3.hydrate(dest, delete_extra=True)
    assert result["changed"] is True and result["files_deleted"] == 2
    assert sorted(result["plan"]["delete"]) == ["stale dir/old.txt", "stale.bin"]
    assert result["files_fetched"] == 0
    assert digests(dest) == digests(src)
    assert s3.hydrate(dest, delete_extra=True)["changed"] is False


def test_ingest_is_idempotent(s3, tmp_path):
    src = _model(tmp_path)
    s3.ingest(src)
    s3.proxy.reset()
    again = s3.ingest(src)
    assert again["changed"] is False and again["uploaded"] == [] and sorted(again["skipped"]) == sorted(MODEL)
    assert again["bytes_uploaded"] == 0
    assert s3.proxy.counts["PUT"] == 0 and s3.proxy.counts["POST"] == 0, f"second ingest wrote: {s3.proxy.requests}"

    (src / "config.pbtxt").write_bytes(b"changed")
    s3.proxy.reset()
    planned = s3.ingest(src, check_only=True)
    assert planned["changed"] is True and planned["uploaded"] == ["config.pbtxt"]
    assert s3.proxy.counts["PUT"] == 0 and s3.proxy.counts["POST"] == 0


def test_ingest_into_a_missing_bucket_fails_or_creates_it(s3, tmp_path):
    src = _model(tmp_path)
    missing = s3.bucket + "-new"
    client = s3.client()
    with pytest.raises(Exception, match=f"bucket {missing} does not exist"):
        s3_model_upload.ingest(client, missing, str(src), model_key="m1")
    planned = s3_model_upload.ingest(
        s3.client(), missing, str(src), model_key="m1", create_bucket=True, check_only=True
    )
    assert planned["changed"] is True and planned["bucket_created"] is True
    assert missing not in [b["Name"] for b in s3.boto.list_buckets()["Buckets"]]  # check mode made nothing
    made = s3_model_upload.ingest(s3.client(), missing, str(src), model_key="m1", create_bucket=True)
    assert made["bucket_created"] is True and sorted(made["uploaded"]) == sorted(MODEL)
    again = s3_model_upload.ingest(s3.client(), missing, str(src), model_key="m1", create_bucket=True)
    assert again["changed"] is False and again["bucket_created"] is False


# ---------------------------------------------------------------------------------------------------
# The modules through ansible, and the engine's command line
# ---------------------------------------------------------------------------------------------------


def test_modules_through_ansible(s3, tmp_path, ansible_env):
    src = _model(tmp_path)
    dest = tmp_path / "dest"
    common = {
        "endpoint_url": s3.proxy.url,
        "region": s3.seaweed.region,
        "bucket": s3.bucket,
        "access_key": s3.seaweed.access_key,
        "secret_key": s3.seaweed.secret_key,
    }

    first = run_module(ansible_env, "s3_model_ingest", {**common, "src": str(src), "model_key": "m1", "label": "NER"})
    assert first.get("failed") is not True, first
    assert first["changed"] is True and sorted(first["uploaded"]) == sorted(MODEL)
    second = run_module(ansible_env, "s3_model_ingest", {**common, "src": str(src), "model_key": "m1", "label": "NER"})
    assert second["changed"] is False and second["uploaded"] == []

    checked = run_module(ansible_env, "s3_model_hydrate", {**common, "model_key": "m1", "dest": str(dest)}, check=True)
    assert checked["changed"] is True and sorted(checked["plan"]["fetch"]) == sorted(MODEL)
    assert not dest.exists()
    first = run_module(ansible_env, "s3_model_hydrate", {**common, "model_key": "m1", "dest": str(dest)})
    assert first.get("failed") is not True, first
    assert first["changed"] is True and first["files_fetched"] == len(MODEL) and first["verification"] == "sha256"
    assert digests(dest) == digests(src)
    s3.proxy.reset()
    second = run_module(ansible_env, "s3_model_hydrate", {**common, "model_key": "m1", "dest": str(dest)})
    assert second["changed"] is False and second["files_fetched"] == 0
    assert second["requests"]["GET"] == 0 and s3.proxy.methods["GET"] == 0

    s3.boto.put_object(
        Bucket=s3.bucket, Key="models/m1/1/vocab.txt", Body=os.urandom(4096)
    )  # behind the manifest's back
    (dest / "1/vocab.txt").unlink()
    failed = run_module(ansible_env, "s3_model_hydrate", {**common, "model_key": "m1", "dest": str(dest)})
    assert failed["failed"] is True and failed["path"] == "1/vocab.txt"
    assert failed["expected"] in failed["msg"] and failed["actual"] in failed["msg"]


def test_engine_command_line(s3, tmp_path):
    src = _model(tmp_path, {"a.bin": 2 * MiB, "b/c.txt": b"c"})
    env = {**os.environ, **s3.seaweed.environment()}
    base = [
        sys.executable,
        str(ENGINE),
        "--endpoint-url",
        s3.proxy.url,
        "--region",
        s3.seaweed.region,
        "--bucket",
        s3.bucket,
    ]
    ingest = subprocess.run(
        base + ["--json", "ingest", "--src", str(src), "--model-key", "cli"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["changed"] is True
    dest = tmp_path / "dest"
    for expect_changed in (True, False):
        hydrate = subprocess.run(
            base + ["--json", "hydrate", "--model-key", "cli", "--dest", str(dest)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert hydrate.returncode == 0, hydrate.stderr
        assert json.loads(hydrate.stdout)["changed"] is expect_changed
    assert digests(dest) == digests(src)
    missing = subprocess.run(
        base + ["hydrate", "--model-key", "nope", "--dest", str(tmp_path / "x")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert missing.returncode == 1 and "manifests/models/nope.json" in missing.stderr
