# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model puller: one pass over the configured models (the systemd timer runs it).

For each model: find the newest numbered version at the source, hydrate it (verified, resumable) into a
staging area beside the Triton repository, rename it into ``<repository>/<model>/<n>/`` in one step, ask
Triton to load it (explicit mode) or wait for Triton to pick it up (poll mode), and check that version
is READY. A version that fails to load is moved out of the repository again (the previous version keeps
serving), recorded as bad in the status file, and not retried until its source changes. Old versions
beyond ``keep`` are removed after the new one serves.

The transfer engine (s3_model_transfer.py with s3_client.py, model_manifest.py and local_tree.py) and the
Triton client (triton.py, with the readiness logic in triton_readiness.py) are the collection's own module_utils
files, installed beside this program; there is no second copy of their logic.
"""

import argparse
import datetime
import fcntl
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import model_manifest
import s3_client
import s3_model_transfer
import triton
import triton_readiness


def log(message, **fields):
    """One line per event on stdout (the journal); key=value fields make it greppable."""
    extra = " ".join("%s=%s" % (k, json.dumps(v) if not isinstance(v, str) else v) for k, v in sorted(fields.items()))
    print(("%s %s" % (message, extra)).strip(), flush=True)


def now():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, path)


def read_json(path, default):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def local_versions(model_dir):
    try:
        return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit() and not name.startswith("0"))
    except OSError:
        return []


class Puller:
    def __init__(self, config):
        self.config = config
        source = config["source"]
        endpoint = s3_client.S3Endpoint(
            source.get("endpoint_url") or None,
            source.get("region") or None,
            verify_tls=source.get("validate_certs", True),
        )
        self.s3 = s3_client.S3Client(endpoint, max_connections=config.get("concurrency", 16))
        self.bucket = source["bucket"]
        self.triton = triton.TritonClient(config["triton"]["url"], timeout=10.0)
        self.repository = config["triton"]["repository"]
        self.staging = config["staging_dir"]
        self.explicit = config["triton"].get("model_control_mode", "explicit") == "explicit"
        self.ready_timeout = float(config["triton"].get("ready_timeout", 300))
        self.status_path = config["status_file"]
        self.status = read_json(self.status_path, {"models": {}})

    # -- Triton ---------------------------------------------------------------------------------
    def wait_for_version(self, name, version):
        """(True, "") when the version is READY; (False, reason) when it failed or the wait timed out.

        The collection's readiness logic (triton_readiness.ModelWaiter, as in triton_model_ready). After an
        explicit load request returned, a version that is not READY and not loading is final (e.g. a version
        policy that excludes it). In poll mode the version may not be in the index yet: it is waited for.
        """
        waiter = triton_readiness.ModelWaiter(
            self.triton, self.ready_timeout, interval=0.2, absent_model="fail" if self.explicit else "wait"
        )
        try:
            waiter.wait_ready(
                [triton_readiness.model_request(name, version)],
                "waiting for version %s of model %s" % (version, name),
                settled_is_final=self.explicit,
            )
        except triton_readiness.WaitFailed as exc:
            return False, str(exc)
        return True, ""

    def load(self, name):
        try:
            self.triton.load(name)
            return True, ""
        except triton.TritonError as exc:
            return False, str(exc)

    # -- one model ------------------------------------------------------------------------------
    def pull(self, model):
        name, key, keep = model["name"], model["key"], int(model.get("keep", 2))
        record = self.status["models"].setdefault(name, {"bad_versions": {}})
        record["last_check"] = now()
        model_dir = os.path.join(self.repository, name)
        versions = model_manifest.list_versions(self.s3, self.bucket, key)
        if not versions:
            record["last_error"] = "no numbered version under s3://%s/models/%s/ or manifests/models/%s/" % (
                self.bucket,
                key,
                key,
            )
            log("no version at the source", model=name, key=key)
            return False
        newest, kind = versions[-1]
        present = local_versions(model_dir)
        bad = record["bad_versions"].get(str(newest))
        source_id = self.source_identity(key, newest, kind)
        if bad and bad.get("source") == source_id:
            log("newest version is known bad; not retried", model=name, version=newest, reason=bad.get("reason"))
            return True
        if newest in present:
            record.update(serving_version=newest, last_error=None)
            return True

        staged = os.path.join(self.staging, name, str(newest))
        log("pulling", model=name, version=newest, source=kind)
        s3_model_transfer.require_same_filesystem(staged, model_dir, "staging_dir")  # refused before any byte
        result = s3_model_transfer.hydrate(
            self.s3,
            self.bucket,
            staged,
            model_key="%s/%d" % (key, newest) if kind == "manifest" else None,
            prefix=None if kind == "manifest" else "models/%s/%d/" % (key, newest),
            concurrency=self.config.get("concurrency", 16),
        )
        log(
            "hydrated",
            model=name,
            version=newest,
            files=result["files_fetched"],
            bytes=result["bytes_fetched"],
            seconds=result["seconds"],
            verification=result["verification"],
        )
        os.makedirs(model_dir, exist_ok=True)
        target = os.path.join(model_dir, str(newest))
        os.rename(staged, target)  # the version appears whole, or not at all
        fsync_dir(model_dir)
        for sidecar in os.listdir(os.path.join(self.staging, name)):
            if sidecar.startswith(".%d." % newest):
                remove(os.path.join(self.staging, name, sidecar))

        ok, reason = self.load(name) if self.explicit else (True, "")
        if ok:
            ok, reason = self.wait_for_version(name, newest)
        if not ok:
            self.reject(name, model_dir, newest, reason, source_id)
            return False
        record.update(serving_version=newest, last_success=now(), last_error=None)
        log("serving", model=name, version=newest)
        self.prune(name, model_dir, keep, newest)
        return True

    def source_identity(self, key, version, kind):
        """What identifies a version's content at the source (a re-published bad version is retried)."""
        target = (
            "manifests/models/%s/%d.json" % (key, version) if kind == "manifest" else "models/%s/%d/" % (key, version)
        )
        if kind == "manifest":
            head = self.s3.head(self.bucket, target)
            return "%s@%s" % (target, (head or {}).get("ETag", "").strip('"'))
        return target

    def reject(self, name, model_dir, version, reason, source_id):
        """Take a version that failed to load out of the repository; the previous one keeps serving."""
        record = self.status["models"][name]
        rejected = os.path.join(self.staging, "rejected", name, "%d-%d" % (version, int(time.time())))
        os.makedirs(os.path.dirname(rejected), exist_ok=True)
        os.rename(os.path.join(model_dir, str(version)), rejected)
        fsync_dir(model_dir)
        previous = local_versions(model_dir)
        if self.explicit and previous:
            self.load(name)  # back to the versions on disk, the previous one
        record["bad_versions"][str(version)] = {
            "reason": reason,
            "source": source_id,
            "at": now(),
            "moved_to": rejected,
        }
        record["last_error"] = "version %d failed to load: %s" % (version, reason)
        record["serving_version"] = previous[-1] if previous else None
        log(
            "version failed to load; previous version keeps serving",
            model=name,
            version=version,
            serving=record["serving_version"],
            reason=reason,
        )

    def prune(self, name, model_dir, keep, newest):
        """Remove the oldest versions so that ``keep`` remain (the one just published among them)."""
        older = [v for v in local_versions(model_dir) if v != newest]
        for old in older[: max(0, len(older) - (keep - 1))]:
            trash = os.path.join(self.staging, ".trash-%s-%d-%d" % (name, old, os.getpid()))
            os.rename(os.path.join(model_dir, str(old)), trash)
            remove(trash)
            log("removed old version", model=name, version=old)

    def run(self):
        failures = 0
        for model in self.config["models"]:
            try:
                if not self.pull(model):
                    failures += 1
            except (s3_client.TransferError, triton.TritonError, OSError) as exc:
                failures += 1
                self.status["models"].setdefault(model["name"], {"bad_versions": {}})["last_error"] = str(exc)
                log("pull failed", model=model["name"], error=str(exc))
        self.status["updated"] = now()
        self.status["ok"] = failures == 0
        write_json_atomic(self.status_path, self.status)
        return 0 if failures == 0 else 2


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--config", default="/etc/oceanid/model-puller.json")
    args = parser.parse_args(argv)
    config = read_json(args.config, None)
    if config is None:
        print("error: cannot read the configuration %s" % args.config, file=sys.stderr)
        return 1
    os.makedirs(config["staging_dir"], exist_ok=True)
    with open(os.path.join(config["staging_dir"], ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log("another pull is running; this one stops")
            return 0
        return Puller(config).run()


if __name__ == "__main__":
    sys.exit(main())
