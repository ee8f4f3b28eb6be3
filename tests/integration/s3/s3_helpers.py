# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the S3 model transfer tests: model trees, snapshots of a destination, one test's S3 setup."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.oceanid.fleet.plugins.module_utils import s3_client, s3_model_transfer, s3_model_upload
from tests.support.seaweedfs import CountingProxy, SeaweedS3

MiB = 1024 * 1024


def write_tree(root: Path, files: dict[str, bytes | int]) -> Path:
    """Create files under root: bytes as given, or an int for that many random bytes."""
    for relpath, content in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(content) if isinstance(content, int) else content)
    return root


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 * MiB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def digests(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every regular file under root."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything a reader could notice about a tree: each entry's type, size, digest, inode and mtime."""
    if not root.exists():
        return {}
    found = {".": ("dir", root.stat().st_ino)}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        relpath = str(path.relative_to(root))
        if path.is_dir():
            found[relpath] = ("dir", st.st_ino)
        else:
            found[relpath] = ("file", st.st_size, sha256_file(path), st.st_ino, st.st_mtime_ns)
    return found


def beside(dest: Path) -> list[str]:
    """Hidden entries the engine keeps next to dest (state record, partial area, staging)."""
    return sorted(name for name in os.listdir(dest.parent) if name.startswith("." + dest.name + "."))


def part_digests(data: bytes, part_size: int) -> list[str]:
    return [hashlib.sha256(data[i : i + part_size]).hexdigest() for i in range(0, len(data), part_size)] or [
        hashlib.sha256(b"").hexdigest()
    ]


@dataclass
class S3Case:
    """One test's view of the module's SeaweedFS: its own bucket, the proxy in front, engine and boto3 clients."""

    seaweed: SeaweedS3
    proxy: CountingProxy
    bucket: str

    def endpoint(self, through_proxy: bool = True) -> s3_client.S3Endpoint:
        return s3_client.S3Endpoint(
            endpoint_url=self.proxy.url if through_proxy else self.seaweed.endpoint_url,
            region=self.seaweed.region,
            access_key=self.seaweed.access_key,
            secret_key=self.seaweed.secret_key,
        )

    def client(self, through_proxy: bool = True, retries: int = 4) -> s3_client.S3Client:
        """A fresh engine client (fresh stats), through the counting proxy unless told otherwise."""
        return s3_client.S3Client(self.endpoint(through_proxy), max_connections=32, retries=retries)

    @property
    def boto(self):
        """boto3 straight to SeaweedFS: what the test does behind the engine's back is not counted."""
        return self.seaweed.boto3_client()

    def ingest(self, src: Path, model_key: str = "m1", **kwargs) -> dict:
        return s3_model_upload.ingest(self.client(), self.bucket, str(src), model_key=model_key, **kwargs)

    def hydrate(self, dest: Path, model_key: str | None = "m1", **kwargs) -> dict:
        if "prefix" in kwargs:
            model_key = None
        return s3_model_transfer.hydrate(self.client(), self.bucket, str(dest), model_key=model_key, **kwargs)

    def manifest(self, model_key: str = "m1") -> dict:
        import json  # pylint: disable=import-outside-toplevel

        body = self.boto.get_object(Bucket=self.bucket, Key=f"manifests/models/{model_key}.json")["Body"].read()
        return json.loads(body)


def run_module(env: dict[str, str], module: str, args: dict, check: bool = False) -> dict:
    """Run oceanid.fleet.<module> with ``ansible`` on localhost; the host's result (failed or not)."""
    command = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-m",
        f"oceanid.fleet.{module}",
        "-a",
        json.dumps(args),
    ]
    completed = subprocess.run(
        command + (["--check"] if check else []), env=env, capture_output=True, text=True, timeout=600, check=False
    )
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        raise AssertionError(
            f"ansible printed no JSON (rc {completed.returncode}):\n{completed.stdout[-3000:]}\n"
            f"{completed.stderr[-3000:]}"
        ) from None
    return report["plays"][0]["tasks"][0]["hosts"]["localhost"]
