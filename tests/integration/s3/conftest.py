# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the S3 model transfer tests: one real SeaweedFS (and counting proxy) per test module, a bucket per test.

Also makes this checkout importable as ``ansible_collections.oceanid.fleet`` (as tests/unit/conftest.py does),
so the tests import the engine the way the modules do.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.support.ansible_env import isolated_ansible_env, make_collection_importable

COLLECTIONS_PATH = make_collection_importable()

# pylint: disable=wrong-import-position
from tests.integration.s3.s3_helpers import S3Case  # noqa: E402
from tests.support.seaweedfs import CountingProxy, SeaweedS3  # noqa: E402


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    """A SeaweedFS (master, volume, filer, S3) on free loopback ports for this test module."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def proxy(seaweed):
    """The counting, fault-injecting proxy in front of the module's S3 port."""
    with CountingProxy(seaweed.endpoint_url) as running:
        yield running


_BUCKETS_MADE = [0]


@pytest.fixture
def s3(seaweed, proxy, request) -> S3Case:
    """A fresh bucket for this test; the proxy's counters and faults cleared; the server running."""
    if not seaweed.running:  # an earlier test killed it and failed before restarting it
        seaweed.start()
    proxy.heal()
    proxy.reset()
    _BUCKETS_MADE[0] += 1
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    name = f"t{_BUCKETS_MADE[0]:03d}-{slug}"[:63].rstrip("-")
    seaweed.boto3_client().create_bucket(Bucket=name)
    yield S3Case(seaweed, proxy, name)
    proxy.heal()


@pytest.fixture
def ansible_env(tmp_path) -> dict[str, str]:
    """An environment for `ansible` unaffected by the caller's settings, with this checkout's collection."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    return isolated_ansible_env(
        tmp_path,
        base,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
    )


@pytest.fixture
def mount_tmpfs():
    """mount_tmpfs(directory, size="64m"): a tmpfs mounted on directory (created; root only), unmounted afterwards;
    with bind=True, directory bind-mounted on itself instead (same filesystem: os.path.ismount does not see it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(mountpoint, size="64m", bind=False):
        mountpoint.mkdir(parents=True, exist_ok=True)
        how = ["--bind", str(mountpoint)] if bind else ["-t", "tmpfs", "-o", "size=%s" % size, "tmpfs"]
        subprocess.run(["mount", *how, str(mountpoint)], check=True)
        mounted.append(mountpoint)
        return mountpoint

    yield mount
    for mountpoint in reversed(mounted):
        subprocess.run(["umount", str(mountpoint)], check=False)
        if os.path.ismount(mountpoint):
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def small_filesystem(tmp_path, mount_tmpfs):
    """A 64 MiB tmpfs mounted on a fresh directory (root only), unmounted afterwards."""
    return mount_tmpfs(tmp_path / "small-fs")
