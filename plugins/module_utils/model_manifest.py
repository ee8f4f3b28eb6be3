# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model manifest format: where a model and its manifest live in the bucket, hashing, validation.

A model ingested as key ``<key>`` has its files under ``models/<key>/`` and its manifest at
``manifests/models/<key>.json`` (written last): format, key, label, tags, part_size and, per file, its
path, size, SHA-256 and the SHA-256 of each part_size chunk.
"""

import hashlib

try:
    from .s3_client import EMPTY_SHA256, SourceError
except ImportError:  # a plain module beside the model puller, not in a package
    from s3_client import EMPTY_SHA256, SourceError

MANIFEST_FORMAT = "oceanid.model-manifest/1"
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MIN_MULTIPART_PART = 5 * 1024 * 1024  # S3's smallest part (all but the last)
MAX_PARTS = 10000  # S3's most parts per upload


def manifest_key(model_key):
    return "manifests/models/%s.json" % model_key


def model_prefix(model_key):
    return "models/%s/" % model_key


def list_versions(client, bucket, key):
    """Numbered versions of a model at the source, newest last: [(n, "manifest" | "prefix")].

    A version ingested as model key ``<key>/<n>`` has its manifest at ``manifests/models/<key>/<n>.json``,
    written after its files, so it is listed only once complete. Numbered prefixes ``models/<key>/<n>/``
    without a manifest are listed too (verified by size and ETag only).
    """
    versions = {}
    for obj in client.list_objects(bucket, "manifests/models/%s/" % key):
        name = obj.rsplit("/", 1)[-1]
        if name.endswith(".json") and name[:-5].isdigit() and not name.startswith("0"):
            versions[int(name[:-5])] = "manifest"
    for obj in client.list_objects(bucket, model_prefix(key)):
        segment = obj[len(model_prefix(key)) :].split("/", 1)[0]
        if segment.isdigit() and not segment.startswith("0") and "/" in obj[len(model_prefix(key)) :]:
            versions.setdefault(int(segment), "prefix")
    return sorted(versions.items())


def hash_file(path, part_size):
    """(sha256, [sha256 of each part_size chunk]) of a file, read once."""
    whole, parts = hashlib.sha256(), []
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(part_size)
            if not chunk:
                break
            whole.update(chunk)
            parts.append(hashlib.sha256(chunk).hexdigest())
    return whole.hexdigest(), parts or [EMPTY_SHA256]


def validate_manifest(manifest, where):
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise SourceError("%s is not a model manifest (expected a JSON object with a 'files' list)" % where)
    seen = set()
    for entry in manifest["files"]:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not path or not isinstance(entry.get("size"), int) or not entry.get("sha256"):
            raise SourceError("%s: every file needs path, size and sha256; got %r" % (where, entry))
        if path.startswith("/") or ".." in path.split("/") or path in seen:
            raise SourceError("%s: file path %r is absolute, escapes the model directory, or repeats" % (where, path))
        seen.add(path)
    return manifest
