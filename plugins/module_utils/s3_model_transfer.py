# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The hydrate engine: a model in S3 -> a local tree, verified and published atomically.

One engine for the s3_model_hydrate module and for the model puller on GPU hosts (which imports it and
the files it needs, s3_client.py, model_manifest.py and local_tree.py, as plain modules installed beside
it). Standard library only. The S3 client (endpoint, credentials, SigV4) is in s3_client.py, the manifest
format and hashing in model_manifest.py, the filesystem primitives in local_tree.py, and the way back
(ingest) in s3_model_upload.py.

Guarantees of hydrate():
* A reader of ``dest`` sees the old tree or the new tree, never a mix: the new tree is built in a staging
  directory beside ``dest`` (same filesystem; unchanged files are hard links, not copies), synced with one
  ``syncfs()``, then swapped in with one ``renameat2(RENAME_EXCHANGE)`` (or two renames where the kernel or
  filesystem lacks it).
* Every byte is checked: files are fetched as parallel ranged GETs written at their offsets into
  preallocated files; each part's SHA-256 is computed as it streams and compared with the per-part digest
  in the manifest (ingest writes them), so parts can arrive in any order. A manifest with whole-file
  digests only is checked by hashing each finished file in order.
* Nothing is fetched twice: a state record beside ``dest`` remembers what was published (size, mtime,
  digest, source ETag). An unchanged model costs one HEAD of the manifest and no GET. An interrupted
  download leaves its partial files beside ``dest``; the next run keeps every part whose bytes already
  match the manifest and fetches only the rest.
* Free space is checked before the first byte is written, on the filesystem that will hold the files
  (dest's parent, which holds the partial area and the staging directory).
* A dest that is a mount point, or holds one, is refused before any request: a mount point cannot be
  renamed, and a tree that spans filesystems cannot be swapped in one step. Give a directory inside the
  volume instead (``<mount>/<model>``): everything the hydrate writes then stays on that volume.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import shutil
import threading
import time

try:
    from . import local_tree, model_manifest
    from .s3_client import SourceError, TransferError
except ImportError:  # plain modules beside the model puller, not in a package
    import local_tree
    import model_manifest
    from s3_client import SourceError, TransferError

STATE_FORMAT = "oceanid.hydrate-state/1"
DEFAULT_REQUEST_SIZE = 32 * 1024 * 1024  # bytes per ranged GET (several manifest parts)
STREAM_CHUNK = 1024 * 1024
SPACE_MARGIN = 16 * 1024 * 1024  # kept free beyond what a hydrate writes


class SpaceError(TransferError):
    """Not enough free space at the destination."""


class VerificationError(TransferError):
    """Bytes that do not match the manifest."""

    def __init__(self, message, path=None, expected=None, actual=None):
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


# --------------------------------------------------------------------------------------------------
# hydrate
# --------------------------------------------------------------------------------------------------


class _Wanted:
    """One file of the source: where it is in S3 and how to check it."""

    def __init__(self, path, key, size, sha256=None, parts=None, etag=None):
        self.path = path
        self.key = key
        self.size = size
        self.sha256 = sha256
        self.parts = parts
        self.etag = etag


def _source_files(client, bucket, model_key, prefix):
    """(files, manifest_etag, part_size, verification) from the manifest, or from a listing without one."""
    if model_key:
        where = "s3://%s/%s" % (bucket, model_manifest.manifest_key(model_key))
        head = client.head(bucket, model_manifest.manifest_key(model_key))
        if head is None:
            if not client.bucket_exists(bucket):
                raise SourceError(
                    "bucket %s does not exist on %s: check the bucket name and the endpoint"
                    % (bucket, client.endpoint.endpoint_url)
                )
            raise SourceError(
                "%s does not exist on %s: ingest the model first, or give a prefix"
                % (where, client.endpoint.endpoint_url)
            )
        body = client.get(bucket, model_manifest.manifest_key(model_key))
        try:
            manifest = model_manifest.validate_manifest(json.loads(body.decode("utf-8")), where)
        except ValueError as exc:
            raise SourceError("%s is not valid JSON: %s" % (where, exc))
        part_size = int(manifest.get("part_size") or model_manifest.DEFAULT_PART_SIZE)
        files = [
            _Wanted(
                entry["path"],
                model_manifest.model_prefix(model_key) + entry["path"],
                entry["size"],
                entry["sha256"],
                entry.get("parts"),
            )
            for entry in manifest["files"]
        ]
        return files, head.get("ETag", "").strip('"'), part_size, "sha256"
    listing = client.list_objects(bucket, prefix)
    files = [
        _Wanted(key[len(prefix) :], key, info["size"], etag=info["etag"])
        for key, info in sorted(listing.items())
        if not key.endswith("/") and key[len(prefix) :]
    ]
    if not files:
        raise SourceError("nothing under s3://%s/%s on %s" % (bucket, prefix, client.endpoint.endpoint_url))
    return files, None, None, "size+etag"


def _unchanged_fast_path(client, bucket, model_key, dest, state, delete_extra):
    """True when the manifest's ETag and every local file match the state record: no GET needed."""
    if not model_key or not state or state.get("manifest_etag") is None or not os.path.isdir(dest):
        return False
    if delete_extra and any(r.get("sha256") is None for r in state.get("files", {}).values()):
        return False  # extras kept by an earlier run are now to be deleted
    head = client.head(bucket, model_manifest.manifest_key(model_key))
    if head is None or head.get("ETag", "").strip('"') != state["manifest_etag"]:
        return False
    local = local_tree.walk_files(dest)
    recorded = state.get("files", {})
    if set(local) != set(recorded):
        return False
    return all(local[p].st_size == r["size"] and local[p].st_mtime_ns == r["mtime_ns"] for p, r in recorded.items())


def _load_state(dest):
    try:
        with open(local_tree.sidecar(dest, "oceanid-state.json")) as handle:
            state = json.load(handle)
        return state if state.get("format") == STATE_FORMAT else None
    except (OSError, ValueError):
        return None


def plan_hydrate(files, dest, state, delete_extra, part_size, verification):
    """Decide per file: keep (already there and verified) or fetch; and what to delete."""
    local = local_tree.walk_files(dest)
    recorded = (state or {}).get("files", {})
    keep, fetch = [], []
    for wanted in files:
        st, rec = local.get(wanted.path), recorded.get(wanted.path)
        if st is not None and st.st_size == wanted.size:
            same_stat = rec is not None and rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns
            if same_stat and verification == "sha256" and rec.get("sha256") == wanted.sha256:
                keep.append(wanted)
                continue
            if same_stat and verification != "sha256" and rec.get("etag") == wanted.etag:
                keep.append(wanted)
                continue
            # Not recorded (first run on an existing tree, or a run killed after publishing): hash it.
            if (
                verification == "sha256"
                and not same_stat
                and model_manifest.hash_file(os.path.join(dest, wanted.path), part_size)[0] == wanted.sha256
            ):
                keep.append(wanted)
                continue
        fetch.append(wanted)
    wanted_paths = {w.path for w in files}
    extra = sorted(p for p in local if p not in wanted_paths)
    return {
        "keep": keep,
        "fetch": fetch,
        "delete": extra if delete_extra else [],
        "carry": [] if delete_extra else extra,
    }


class _Download:
    """Parallel ranged GETs of the files to fetch into the partial area, verified part by part."""

    def __init__(self, client, bucket, partial_dir, part_size, concurrency, verification, request_size=None):
        self.client = client
        self.request_size = request_size or DEFAULT_REQUEST_SIZE
        self.bucket = bucket
        self.partial_dir = partial_dir
        self.part_size = part_size
        self.concurrency = concurrency
        self.verification = verification
        self.lock = threading.Lock()
        self.fds = {}
        self.remaining = {}
        self.bytes_fetched = 0

    def _ranges(self, wanted):
        if wanted.size == 0:
            return []
        part_size = self.part_size
        return [
            (index, start, min(start + part_size, wanted.size))
            for index, start in enumerate(range(0, wanted.size, part_size))
        ]

    def _expected_part(self, wanted, index):
        if wanted.parts and len(wanted.parts) == (wanted.size + self.part_size - 1) // self.part_size:
            return wanted.parts[index]
        if wanted.sha256 and wanted.size <= self.part_size:
            return wanted.sha256
        return None

    def _open(self, wanted):
        path = os.path.join(self.partial_dir, wanted.path)
        with self.lock:
            fd = self.fds.get(wanted.path)
            if fd is None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                if os.fstat(fd).st_size != wanted.size:
                    os.ftruncate(fd, 0)
                    local_tree.preallocate(fd, wanted.size)
                self.fds[wanted.path] = fd
        return fd

    def resumable_parts(self, wanted):
        """Parts of a partial file left by an earlier run whose bytes already match the manifest."""
        path = os.path.join(self.partial_dir, wanted.path)
        try:
            if os.stat(path).st_size != wanted.size:
                return set()
        except OSError:
            return set()
        done = set()
        with open(path, "rb") as handle:
            for index, start, end in self._ranges(wanted):
                expected = self._expected_part(wanted, index)
                if expected is None:
                    return set()
                handle.seek(start)
                if hashlib.sha256(handle.read(end - start)).hexdigest() == expected:
                    done.add(index)
        return done

    def _spans(self, wanted, done):
        """Consecutive parts still to fetch, grouped into requests of up to request_size bytes.

        Digests stay per part (the manifest's granularity); a request can carry several parts because an
        S3 server answers a few large ranged GETs faster than many small ones.
        """
        spans, current = [], []
        per_request = max(1, self.request_size // self.part_size)
        for part in self._ranges(wanted):
            if part[0] in done:
                if current:
                    spans.append(current)
                current = []
                continue
            current.append(part)
            if len(current) == per_request:
                spans.append(current)
                current = []
        if current:
            spans.append(current)
        return spans

    def _fetch_span(self, wanted, parts):
        fd = self._open(wanted)
        start, end = parts[0][1], parts[-1][2]
        whole = start == 0 and end == wanted.size
        headers = {} if whole else {"Range": "bytes=%d-%d" % (start, end - 1)}

        def sink(response):
            offset, buffer = start, bytearray(min(STREAM_CHUNK, end - start))
            view = memoryview(buffer)
            for index, part_start, part_end in parts:
                digest = hashlib.sha256()
                while offset < part_end:
                    count = response.readinto(view[: min(len(buffer), part_end - offset)])
                    if not count:
                        raise http.client.IncompleteRead(b"", end - offset)
                    os.pwrite(fd, view[:count], offset)
                    digest.update(view[:count])
                    offset += count
                    self.client.count_received(count)
                local_tree.start_writeback(fd, part_start, part_end - part_start)
                expected, actual = self._expected_part(wanted, index), digest.hexdigest()
                if expected is not None and actual != expected:
                    raise VerificationError(
                        "%s: part %d (bytes %d-%d) has sha256 %s, the manifest says %s"
                        % (wanted.path, index, part_start, part_end - 1, actual, expected),
                        path=wanted.path,
                        expected=expected,
                        actual=actual,
                    )
            if response.read(1):
                raise SourceError(
                    "s3://%s/%s is larger than the %d bytes the source listed" % (self.bucket, wanted.key, wanted.size)
                )

        for attempt in (1, 2):  # one more try for bytes that were wrong on the way (a flaky proxy), then fail
            try:
                self.client.request(
                    "GET", self.bucket, wanted.key, headers=headers, sink=sink, expect=(200,) if whole else (206,)
                )
                break
            except VerificationError:
                if attempt == 2:
                    raise
        with self.lock:
            self.bytes_fetched += end - start
            self.remaining[wanted.path] -= 1
            if self.remaining[wanted.path] == 0:
                os.close(self.fds.pop(wanted.path))

    def run(self, files):
        jobs = []
        for wanted in files:
            done = self.resumable_parts(wanted) if self.verification == "sha256" else set()
            spans = self._spans(wanted, done)
            self.remaining[wanted.path] = len(spans)
            if not spans:
                path = os.path.join(self.partial_dir, wanted.path)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "ab") as handle:
                    handle.truncate(wanted.size)
            jobs.extend((wanted, span) for span in spans)
        # Big files first so that their requests overlap with the many small ones.
        jobs.sort(key=lambda job: -job[0].size)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
                futures = [pool.submit(self._fetch_span, *job) for job in jobs]
                for future in concurrent.futures.as_completed(futures):
                    error = future.exception()
                    if error is not None:
                        for other in futures:
                            other.cancel()
                        raise error
        finally:
            with self.lock:
                for fd in self.fds.values():
                    os.close(fd)
                self.fds.clear()

    def verify_whole(self, files):
        """Files the parts could not vouch for: hash them in order (whole-file digests, or MD5 ETags)."""
        for wanted in files:
            path = os.path.join(self.partial_dir, wanted.path)
            if os.stat(path).st_size != wanted.size:
                raise VerificationError(
                    "%s: %d bytes arrived, the source says %d" % (wanted.path, os.stat(path).st_size, wanted.size),
                    path=wanted.path,
                    expected=wanted.size,
                    actual=os.stat(path).st_size,
                )
            if self.verification == "sha256":
                if all(self._expected_part(wanted, index) is not None for index, _s, _e in self._ranges(wanted)):
                    continue
                actual = model_manifest.hash_file(path, self.part_size)[0]
                if actual != wanted.sha256:
                    raise VerificationError(
                        "%s: sha256 %s, the manifest says %s" % (wanted.path, actual, wanted.sha256),
                        path=wanted.path,
                        expected=wanted.sha256,
                        actual=actual,
                    )
            elif wanted.etag and "-" not in wanted.etag and len(wanted.etag) == 32:
                md5 = (
                    hashlib.md5()
                )  # plain-PUT ETags are the MD5 of the bytes (not a security check, a corruption check)
                with open(path, "rb") as handle:
                    for chunk in iter(lambda: handle.read(STREAM_CHUNK), b""):
                        md5.update(chunk)
                if md5.hexdigest() != wanted.etag:
                    raise VerificationError(
                        "%s: MD5 %s, the object's ETag says %s" % (wanted.path, md5.hexdigest(), wanted.etag),
                        path=wanted.path,
                        expected=wanted.etag,
                        actual=md5.hexdigest(),
                    )


def _refuse_mounts(dest):
    """Refuse, before anything is written, a dest that cannot be swapped whole with a tree built beside it."""
    if not os.path.isdir(dest):
        return
    why = (
        "a hydrate builds the new tree beside dest, on the same filesystem, and swaps the two directories in one "
        "rename so that readers never see a mix; a mount point cannot be renamed"
    )
    mounts = local_tree.mounts_at_or_under(dest)
    if dest in mounts:
        raise TransferError(
            "dest %s is a mount point (%s): give a directory inside the volume as dest, e.g. %s/<model>, or mount "
            "the volume one level up; nothing was written" % (dest, why, dest)
        )
    if mounts:
        raise TransferError(
            "%s inside dest %s is a mount point (%s, and its files cannot be linked into the new tree): "
            "hydrate into a directory without mounts inside; nothing was written" % (mounts[0], dest, why)
        )


def require_same_filesystem(path, other, what):
    """Raise before any byte is written when path and other (or their nearest existing ancestors) are on two
    filesystems: a tree hydrated at path cannot be renamed into other, and the space check measures path's."""
    if os.stat(local_tree.existing(path)).st_dev != os.stat(local_tree.existing(other)).st_dev:
        raise TransferError(
            "%s %s and %s are on different filesystems (a mount point in between?): a hydrated tree is published "
            "with one rename, which cannot cross filesystems; put both on the same filesystem" % (what, path, other)
        )


def hydrate(
    client,
    bucket,
    dest,
    model_key=None,
    prefix=None,
    delete_extra=False,
    concurrency=16,
    part_size=None,
    check_only=False,
):
    """Make ``dest`` an exact, verified copy of a model in S3; see the module docstring for the guarantees."""
    if bool(model_key) == bool(prefix):
        raise TransferError("give exactly one of model_key (with a manifest) or prefix (without)")
    started = time.monotonic()
    dest = os.path.abspath(dest).rstrip("/")
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise TransferError("dest %s exists and is not a directory; a model is published as a directory" % dest)
    _refuse_mounts(dest)
    state = _load_state(dest)
    result = {
        "changed": False,
        "files_fetched": 0,
        "bytes_fetched": 0,
        "files_deleted": 0,
        "files_kept": 0,
        "seconds": 0.0,
        "mb_per_s": 0.0,
        "verification": "sha256" if model_key else "size+etag",
        "plan": {"fetch": [], "delete": [], "bytes": 0},
        "dest": dest,
    }
    if _unchanged_fast_path(client, bucket, model_key, dest, state, delete_extra):
        result["files_kept"] = len(state["files"])
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    files, manifest_etag, manifest_part_size, verification = _source_files(client, bucket, model_key, prefix)
    part_size = part_size or manifest_part_size or model_manifest.DEFAULT_PART_SIZE
    plan = plan_hydrate(files, dest, state, delete_extra, manifest_part_size or part_size, verification)
    result["plan"] = {
        "fetch": [w.path for w in plan["fetch"]],
        "delete": plan["delete"],
        "bytes": sum(w.size for w in plan["fetch"]),
    }
    result["files_kept"] = len(plan["keep"])
    needs_publish = bool(plan["fetch"] or plan["delete"]) or not os.path.isdir(dest)
    if check_only or not needs_publish:
        result["changed"] = needs_publish
        if not check_only and not needs_publish:
            _record_state(dest, files, manifest_etag, verification)  # e.g. a tree that was there before, now recorded
        result["seconds"] = round(time.monotonic() - started, 3)
        return result

    partial_dir = local_tree.sidecar(dest, "partial")
    download = _Download(client, bucket, partial_dir, manifest_part_size or part_size, concurrency, verification)
    if manifest_part_size and part_size != manifest_part_size:
        # Per-part digests only exist for the manifest's part size; other sizes would force whole-file hashing.
        download.part_size = manifest_part_size
    already = 0
    for wanted in plan["fetch"]:
        try:
            st = os.stat(os.path.join(partial_dir, wanted.path))
            already += st.st_blocks * 512 if st.st_size == wanted.size else 0
        except OSError:
            pass
    needed = sum(w.size for w in plan["fetch"]) - already + SPACE_MARGIN
    free = local_tree.free_bytes(
        os.path.dirname(dest)
    )  # holds the partial area and the new tree (dest is no mount point)
    if needed > free:
        raise SpaceError(
            "not enough space for %s: %d bytes to write (+%d margin), %d free on its filesystem; nothing was written"
            % (dest, needed - SPACE_MARGIN, SPACE_MARGIN, free)
        )

    os.makedirs(partial_dir, exist_ok=True)
    download.run(plan["fetch"])
    download.verify_whole(plan["fetch"])
    _publish(dest, plan, partial_dir)
    _record_state(dest, files, manifest_etag, verification)
    shutil.rmtree(partial_dir, ignore_errors=True)

    seconds = time.monotonic() - started
    result.update(
        changed=True,
        files_fetched=len(plan["fetch"]),
        bytes_fetched=download.bytes_fetched,
        files_deleted=len(plan["delete"]),
        seconds=round(seconds, 3),
        mb_per_s=round(download.bytes_fetched / 1e6 / seconds, 1) if seconds > 0 else 0.0,
    )
    return result


def _publish(dest, plan, partial_dir):
    """Build the new tree beside dest (links for kept files, renames for fetched ones), sync, swap."""
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    base = os.path.basename(dest)
    for name in os.listdir(parent):  # staging left by a killed run
        if name.startswith(".%s.staging-" % base) or name.startswith(".%s.old-" % base):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    staging = local_tree.sidecar(dest, "staging-%d" % os.getpid())
    os.mkdir(staging, 0o755)
    try:
        for path in [w.path for w in plan["keep"]] + plan["carry"]:
            target = os.path.join(staging, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(os.path.join(dest, path), target)
        for wanted in plan["fetch"]:
            target = os.path.join(staging, wanted.path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.rename(os.path.join(partial_dir, wanted.path), target)
            os.chmod(target, 0o644)
        local_tree.syncfs(staging)
        if not os.path.exists(dest):
            os.rename(staging, dest)
        elif local_tree.exchange(staging, dest):
            shutil.rmtree(staging)  # now the old tree
        else:
            old = local_tree.sidecar(dest, "old-%d" % os.getpid())
            os.rename(dest, old)
            os.rename(staging, dest)
            shutil.rmtree(old)
        fd = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _record_state(dest, files, manifest_etag, verification):
    local = local_tree.walk_files(dest)
    record = {"format": STATE_FORMAT, "manifest_etag": manifest_etag, "verification": verification, "files": {}}
    for wanted in files:
        st = local.get(wanted.path)
        if st is not None:
            record["files"][wanted.path] = {
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": wanted.sha256,
                "etag": wanted.etag,
            }
    for path, st in local.items():  # carried extras are part of the tree too
        record["files"].setdefault(path, {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": None, "etag": None})
    local_tree.write_json_atomic(local_tree.sidecar(dest, "oceanid-state.json"), record)
