# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Hydrating on mounted volumes, and the messages of a failed hydrate, against the real SeaweedFS.

A hydrate builds the new tree beside dest and swaps the two directories with one rename, so that Triton never
sees a mix. A mount point cannot be renamed: a dest that is one (or holds one) is refused before any request and
any byte, with a message that says why and what to do; a dest inside a mounted volume works, and everything it
writes (partial area, staging, state) stays on that volume. Real tmpfs mounts (root), unmounted in teardown.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.oceanid.fleet.plugins.module_utils import s3_client, s3_model_transfer
from tests.integration.s3.s3_helpers import MiB, beside, digests, run_module, snapshot, write_tree

MODEL = {"config.pbtxt": b'name: "m"\n', "1/model.onnx": 1 * MiB + 7}


def _module_args(s3, **args) -> dict:
    return {
        "endpoint_url": s3.proxy.url,
        "region": s3.seaweed.region,
        "bucket": s3.bucket,
        "access_key": s3.seaweed.access_key,
        "secret_key": s3.seaweed.secret_key,
        **args,
    }


# ---------------------------------------------------------------------------------------------------
# Mount points
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("old_tree", [{}, {"config.pbtxt": b"old", "1/model.onnx": 1000}], ids=["empty", "old-tree"])
def test_a_mount_point_as_dest_is_refused_before_any_byte(s3, tmp_path, small_filesystem, old_tree):
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    write_tree(small_filesystem, old_tree)
    before, parent_before = snapshot(small_filesystem), sorted(os.listdir(tmp_path))
    s3.proxy.reset()

    with pytest.raises(s3_model_transfer.TransferError) as failure:
        s3.hydrate(small_filesystem)
    message = str(failure.value)
    assert "%s is a mount point" % small_filesystem in message and "a mount point cannot be renamed" in message
    assert "give a directory inside the volume as dest" in message and "nothing was written" in message
    assert sum(s3.proxy.methods.values()) == 0, "refused before any request"
    assert snapshot(small_filesystem) == before
    assert sorted(os.listdir(tmp_path)) == parent_before and beside(small_filesystem) == []


def test_a_bind_mount_as_dest_is_refused_before_any_byte(s3, tmp_path, mount_tmpfs):
    """A bind mount of the same filesystem: os.path.ismount says no, renameat2 would still fail with EBUSY."""
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    dest = mount_tmpfs(tmp_path / "dest", bind=True)
    assert not os.path.ismount(dest)
    s3.proxy.reset()

    with pytest.raises(s3_model_transfer.TransferError, match="%s is a mount point" % dest):
        s3.hydrate(dest)
    assert sum(s3.proxy.methods.values()) == 0 and beside(dest) == []


def test_a_mount_inside_dest_is_refused_before_any_byte(s3, tmp_path, mount_tmpfs):
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    dest = write_tree(tmp_path / "dest", {"config.pbtxt": b"old"})
    mount_tmpfs(dest / "1", size="4m")
    before = snapshot(dest)
    s3.proxy.reset()

    with pytest.raises(s3_model_transfer.TransferError, match="inside dest .* is a mount point"):
        s3.hydrate(dest)
    assert sum(s3.proxy.methods.values()) == 0
    assert snapshot(dest) == before and beside(dest) == []


def test_a_dest_inside_a_mounted_volume_works_and_writes_only_there(s3, tmp_path, small_filesystem):
    src = write_tree(tmp_path / "src", MODEL)
    s3.ingest(src)
    dest = small_filesystem / "model"
    parent_before = sorted(os.listdir(tmp_path))

    result = s3.hydrate(dest)
    assert result["changed"] is True and digests(dest) == digests(src)
    assert beside(dest) == [".model.oceanid-state.json"]
    assert sorted(os.listdir(tmp_path)) == parent_before, "nothing may be written on the parent filesystem"
    write_tree(src, {"1/model.onnx": 1 * MiB + 8})
    s3.ingest(src)
    assert s3.hydrate(dest)["files_fetched"] == 1 and digests(dest) == digests(src)


def test_a_failed_hydrate_inside_a_volume_leaves_its_partial_area_on_the_volume(s3, tmp_path, small_filesystem):
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    s3.boto.put_object(Bucket=s3.bucket, Key="models/m1/1/model.onnx", Body=os.urandom(1 * MiB + 7))
    dest = small_filesystem / "model"
    parent_before = sorted(os.listdir(tmp_path))

    with pytest.raises(s3_model_transfer.VerificationError):
        s3.hydrate(dest)
    assert not dest.exists() and ".model.partial" in beside(dest)
    assert sorted(os.listdir(tmp_path)) == parent_before


def test_a_volume_too_small_is_measured_on_the_volume(s3, tmp_path, mount_tmpfs):
    """The parent filesystem has room; the 8 MiB volume that would hold the files has not."""
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    volume = mount_tmpfs(tmp_path / "nvme", size="8m")
    s3.proxy.reset()

    with pytest.raises(s3_model_transfer.SpaceError, match="not enough space for %s" % (volume / "model")):
        s3.hydrate(volume / "model")
    assert os.listdir(volume) == [] and s3.proxy.object_gets("models/m1/1/model.onnx") == 0


def test_the_puller_refuses_a_repository_on_another_filesystem(tmp_path, mount_tmpfs):
    """The puller hydrates into staging and renames into the repository: both must share a filesystem."""
    repository = mount_tmpfs(tmp_path / "repository")
    staged = tmp_path / "staging" / "ner" / "3"
    with pytest.raises(s3_model_transfer.TransferError, match="different filesystems"):
        s3_model_transfer.require_same_filesystem(str(staged), str(repository / "ner"), "staging_dir")
    s3_model_transfer.require_same_filesystem(str(staged), str(tmp_path / "repo-on-same-fs" / "ner"), "staging_dir")


def test_the_module_refuses_a_mount_point_without_change(s3, tmp_path, small_filesystem, ansible_env):
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    failed = run_module(ansible_env, "s3_model_hydrate", _module_args(s3, model_key="m1", dest=str(small_filesystem)))
    assert failed["failed"] is True and failed["changed"] is False
    assert "is a mount point" in failed["msg"] and failed["requests"]["GET"] == 0


# ---------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------


def test_a_missing_bucket_is_named_as_such(s3, tmp_path):
    s3.bucket = s3.bucket + "-missing"
    with pytest.raises(s3_model_transfer.SourceError) as failure:
        s3.hydrate(tmp_path / "dest")
    assert "bucket %s does not exist" % s3.bucket in str(failure.value)
    assert "manifest" not in str(failure.value) and "ingest" not in str(failure.value)


def test_refused_credentials_are_named_on_a_head(s3, tmp_path):
    s3.ingest(write_tree(tmp_path / "src", MODEL))
    endpoint = s3.endpoint()
    endpoint.secret_key = "wrong"
    with pytest.raises(s3_model_transfer.SourceError) as failure:
        s3_model_transfer.hydrate(s3_client.S3Client(endpoint, retries=0), s3.bucket, str(tmp_path / "d"), "m1")
    assert str(failure.value).startswith("HEAD %s/manifests/models/m1.json" % s3.bucket)
    assert "HTTP 403: the server refused the credentials or the signature" in str(failure.value)


@pytest.mark.parametrize("dest_existed", [False, True], ids=["new-dest", "existing-dest"])
def test_module_failures_say_what_became_of_dest(s3, tmp_path, ansible_env, dest_existed):
    dest = tmp_path / "dest"
    if dest_existed:
        write_tree(dest, {"config.pbtxt": b"old"})
    args = _module_args(s3, model_key="m1", dest=str(dest))
    missing_bucket = run_module(ansible_env, "s3_model_hydrate", {**args, "bucket": s3.bucket + "-missing"})
    refused = run_module(ansible_env, "s3_model_hydrate", {**args, "secret_key": "wrong"})
    for failed in (missing_bucket, refused):
        assert failed["failed"] is True and failed["changed"] is False
        assert isinstance(failed["requests"], dict) and failed["requests"]["HEAD"] >= 1
        if dest_existed:
            assert failed["msg"].endswith("; %s was left as it was" % dest)
        else:
            assert failed["msg"].endswith("; nothing was written to %s" % dest) and not dest.exists()
    assert "bucket %s-missing does not exist" % s3.bucket in missing_bucket["msg"]
    assert "the server refused the credentials or the signature" in refused["msg"]
