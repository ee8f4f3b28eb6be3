# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ingest engine: a local model directory -> S3, its manifest written last (the s3_model_ingest module).

Files go to ``models/<key>/`` (multipart above part_size, every part signed with its SHA-256, so the server
rejects bytes damaged on the way); files whose content is already there are skipped; the manifest
``manifests/models/<key>.json`` (see model_manifest.py) is written last, so a reader never finds a manifest
whose files are missing. Idempotent: an unchanged directory uploads nothing and rewrites nothing.
"""

import concurrent.futures
import datetime
import json
import os
import time
import xml.etree.ElementTree as ET

try:
    from . import local_tree, model_manifest
    from .s3_client import S3_NS, SourceError, TransferError
except ImportError:  # plain modules, not in a package
    import local_tree
    import model_manifest
    from s3_client import S3_NS, SourceError, TransferError


def _upload_file(client, bucket, key, path, size, sha256, parts, part_size, pool):
    if size <= part_size:
        with open(path, "rb") as handle:
            client.put(bucket, key, handle.read(), sha256=sha256)
        return
    created = client.request("POST", bucket, key, query={"uploads": ""}, kind="POST")
    upload_id = ET.fromstring(created.body).findtext(S3_NS + "UploadId") or ET.fromstring(created.body).findtext(
        "UploadId"
    )
    if not upload_id:
        raise SourceError("no UploadId in the answer to CreateMultipartUpload for s3://%s/%s" % (bucket, key))

    def upload_part(number):
        with open(path, "rb") as handle:
            handle.seek((number - 1) * part_size)
            data = handle.read(part_size)
        response = client.request(
            "PUT",
            bucket,
            key,
            query={"partNumber": str(number), "uploadId": upload_id},
            body=data,
            payload_hash=parts[number - 1],
        )
        return number, response.headers.get("ETag")

    try:
        etags = dict(pool.map(upload_part, range(1, len(parts) + 1)))
        body = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
            "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (n, etags[n]) for n in sorted(etags)
        )
        client.request("POST", bucket, key, query={"uploadId": upload_id}, body=body.encode(), kind="POST")
    except BaseException:
        try:
            client.request("DELETE", bucket, key, query={"uploadId": upload_id}, kind="DELETE", expect=(200, 204, 404))
        except TransferError:
            pass
        raise


def ingest(
    client,
    bucket,
    src_dir,
    model_key,
    label=None,
    tags=None,
    part_size=model_manifest.DEFAULT_PART_SIZE,
    concurrency=16,
    check_only=False,
    create_bucket=False,
):
    """Upload a model directory to models/<key>/ and write manifests/models/<key>.json last; idempotent.

    create_bucket: make the bucket first when it does not exist (a new fleet's first publish); without it a
    missing bucket is an error that names it.
    """
    started = time.monotonic()
    if not os.path.isdir(src_dir):
        raise TransferError("src %s is not a directory" % src_dir)
    if part_size < model_manifest.MIN_MULTIPART_PART:
        raise TransferError(
            "part_size %d is below S3's minimum part of %d bytes" % (part_size, model_manifest.MIN_MULTIPART_PART)
        )
    local = local_tree.walk_files(src_dir)
    for path, st in local.items():
        if (st.st_size + part_size - 1) // part_size > model_manifest.MAX_PARTS:
            raise TransferError(
                "%s: %d bytes need more than %d parts of %d bytes; raise part_size"
                % (path, st.st_size, model_manifest.MAX_PARTS, part_size)
            )
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        digests = dict(
            zip(
                sorted(local),
                pool.map(lambda p: model_manifest.hash_file(os.path.join(src_dir, p), part_size), sorted(local)),
            )
        )
    bucket_missing = not client.bucket_exists(bucket)
    if bucket_missing and not create_bucket:
        raise TransferError(
            "bucket %s does not exist at the endpoint; create it first, or set create_bucket to make it" % bucket
        )
    if bucket_missing:
        # Nothing can be there yet: everything is uploaded, the manifest is new.
        existing_body, stored = None, {}
    else:
        existing_body = client.get(bucket, model_manifest.manifest_key(model_key), missing_ok=True)
        stored = client.list_objects(bucket, model_manifest.model_prefix(model_key))
    try:
        existing = json.loads(existing_body.decode("utf-8")) if existing_body else {}
    except ValueError:
        existing = {}
    known = {f["path"]: f for f in existing.get("files", []) if isinstance(f, dict) and "path" in f}
    files, upload, skipped = [], [], []
    for path in sorted(local):
        size = local[path].st_size
        sha256, parts = digests[path]
        files.append({"path": path, "size": size, "sha256": sha256, "parts": parts})
        previous, obj = known.get(path), stored.get(model_manifest.model_prefix(model_key) + path)
        same = (
            previous
            and previous.get("sha256") == sha256
            and previous.get("size") == size
            and existing.get("part_size") == part_size
        )
        if same and obj is not None and obj["size"] == size:
            skipped.append(path)
        else:
            upload.append(path)
    manifest = {
        "format": model_manifest.MANIFEST_FORMAT,
        "key": model_key,
        "label": label or model_key,
        "tags": tags or {},
        "part_size": part_size,
        "files": files,
    }
    comparable = {k: v for k, v in existing.items() if k != "created"}
    manifest_changed = comparable != manifest
    result = {
        "changed": bucket_missing or bool(upload) or manifest_changed,
        "bucket_created": bucket_missing,
        "uploaded": upload,
        "skipped": skipped,
        "bytes_uploaded": 0,
        "manifest_key": model_manifest.manifest_key(model_key),
        "seconds": 0.0,
    }
    if check_only or not result["changed"]:
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    if bucket_missing:
        client.request("PUT", bucket, "", expect=(200,))
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, concurrency)
    ) as pool, concurrent.futures.ThreadPoolExecutor(max_workers=max(1, concurrency)) as part_pool:
        jobs = [
            pool.submit(
                _upload_file,
                client,
                bucket,
                model_manifest.model_prefix(model_key) + path,
                os.path.join(src_dir, path),
                local[path].st_size,
                digests[path][0],
                digests[path][1],
                part_size,
                part_pool,
            )
            for path in upload
        ]
        for job in concurrent.futures.as_completed(jobs):
            job.result()
    manifest["created"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.put(
        bucket,
        model_manifest.manifest_key(model_key),
        json.dumps(manifest, indent=1, sort_keys=True).encode(),
        content_type="application/json",
    )
    result["bytes_uploaded"] = sum(local[p].st_size for p in upload)
    result["seconds"] = round(time.monotonic() - started, 3)
    return result
