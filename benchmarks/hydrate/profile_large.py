# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the time goes on one large file: s5cmd against our engine at a few concurrency / request-size
settings, and against the same engine with SHA-256 switched off (a copy patched in memory for this
measurement only; the shipped engine always verifies). A ``sync`` (untimed) before each copy, so that none
pays for the write-back of the one before. On this machine a copy's speed also depends on which one ran just
before it (see compare_revisions.py, which alternates the order); read single rows with care. Not a test.

    .venv/bin/python benchmarks/hydrate/profile_large.py [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.seaweedfs import SeaweedS3  # noqa: E402  pylint: disable=wrong-import-position

ENGINE = REPO / "plugins" / "module_utils" / "s3_model_transfer.py"  # its imports: plain modules beside it


def load_engine(name: str, without_hashing: bool):
    source = ENGINE.read_text(encoding="utf-8")
    if without_hashing:
        patched = source.replace(
            "                digest = hashlib.sha256()\n", "                digest = _NoDigest()\n"
        )
        patched = patched.replace(
            "if expected is not None and actual != expected:",
            "if expected is not None and actual is not None and actual != expected:",
        )
        assert patched.count("_NoDigest()") == 1, "the engine changed; update this profile"
        source = (
            patched
            + "\n\nclass _NoDigest:\n    def update(self, data):\n        pass\n\n    def hexdigest(self):\n        return None\n"
        )
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    if str(ENGINE.parent) not in sys.path:
        sys.path.insert(0, str(ENGINE.parent))
    exec(compile(source, str(ENGINE), "exec"), module.__dict__)  # pylint: disable=exec-used
    client = importlib.import_module("s3_client")
    module.S3Client, module.S3Endpoint = client.S3Client, client.S3Endpoint
    module.ingest = importlib.import_module("s3_model_upload").ingest
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oceanid-hydrate-profile-"))
    server = SeaweedS3(str(work / "server"))
    server.start()
    try:
        engine, no_hash = load_engine("engine", False), load_engine("engine_no_hash", True)
        server.boto3_client().create_bucket(Bucket="bench")
        (work / "src").mkdir()
        with open(work / "src" / "big.bin", "wb") as handle:
            for _mib in range(args.size_mib):
                handle.write(os.urandom(1 << 20))
        client = engine.S3Client(
            engine.S3Endpoint(server.endpoint_url, "us-east-1", server.access_key, server.secret_key)
        )
        engine.ingest(client, "bench", str(work / "src"), "m")
        env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key)

        def s5cmd():
            dest = work / "s5"
            shutil.rmtree(dest, ignore_errors=True)
            os.sync()
            started = time.monotonic()
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("s5cmd")),
                    "--endpoint-url",
                    server.endpoint_url,
                    "cp",
                    "s3://bench/models/m/*",
                    "%s/" % dest,
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            return time.monotonic() - started, None

        def ours(module, concurrency, request_mib):
            dest = work / "ours"
            for path in work.glob(".ours*"):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            shutil.rmtree(dest, ignore_errors=True)
            os.sync()
            module.DEFAULT_REQUEST_SIZE = request_mib << 20
            s3 = module.S3Client(
                module.S3Endpoint(server.endpoint_url, "us-east-1", server.access_key, server.secret_key)
            )
            cpu, started = os.times(), time.monotonic()
            module.hydrate(s3, "bench", str(dest), model_key="m", concurrency=concurrency)
            wall, after = time.monotonic() - started, os.times()
            return wall, (after.user - cpu.user) + (after.system - cpu.system)

        runs = {"s5cmd": s5cmd}
        for concurrency, request_mib in [(16, 32), (16, 16), (32, 8), (8, 64)]:
            runs["ours c=%d request=%d MiB" % (concurrency, request_mib)] = lambda c=concurrency, r=request_mib: ours(
                engine, c, r
            )
        runs["ours c=16 request=32 MiB, SHA-256 off"] = lambda: ours(no_hash, 16, 32)
        results = {name: [] for name in runs}
        for _round in range(args.rounds):
            for name, run in runs.items():
                results[name].append(run())
        print(
            "one %d MiB file, %d rounds, nproc %d, load %s"
            % (args.size_mib, args.rounds, os.cpu_count(), os.getloadavg())
        )
        base = statistics.median(w for w, _c in results["s5cmd"])
        for name, values in results.items():
            wall = statistics.median(w for w, _c in values)
            cpu = [c for _w, c in values if c is not None]
            print(
                "%-40s wall %.2f s  ratio %.2f  %s"
                % (name, wall, wall / base, "cpu %.2f s" % statistics.median(cpu) if cpu else "")
            )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
