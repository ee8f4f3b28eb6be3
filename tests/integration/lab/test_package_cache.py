# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's package cache on real hosts (issue 18): apt and pip through the machine, filled on first use.

One lab host installs a small Debian package and a small pip package; a second host booted after it installs
the same ones, and the caches' own records (apt-cacher-ng's transfer log, the pip proxy's event log) show that
the second host got every file from the cache, with no fetch from a mirror. The hosts carry this test's names;
the caches are the lab's own (shared with any lab hosts running beside), so the test reads only the log lines
written during its own installs. Needs root (the lab); run it under `flock /tmp/oceanid-lab.lock`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import testinfra

from lab import cache
from lab import settings as lab_settings
from tests.support.lab_cli import lab

REPO_ROOT = Path(__file__).resolve().parents[3]
HOSTS = ["pcache-a", "pcache-b"]
APT_PACKAGE = "hello"
PIP_PACKAGE, PIP_VERSION = "iniconfig", "2.0.0"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def host(name: str, directory: Path):
    """A testinfra host over the lab's own SSH settings (the inventory `lab inventory` prints)."""
    hostvars = json.loads(lab("inventory", "--host", name).stdout)
    ssh_config = directory / f"ssh-{name}.config"
    ssh_config.write_text(
        f"Host {name}\n  HostName {hostvars['ansible_host']}\n  User {hostvars['ansible_user']}\n"
        f"  IdentityFile {hostvars['ansible_ssh_private_key_file']}\n"
        + "".join(f"  {opt.split('=', 1)[0]} {opt.split('=', 1)[1]}\n" for opt in _ssh_options(hostvars))
    )
    return testinfra.get_host(f"ssh://{name}", ssh_config=str(ssh_config))


def _ssh_options(hostvars: dict) -> list[str]:
    words = hostvars["ansible_ssh_common_args"].split()
    return [words[i + 1] for i, word in enumerate(words) if word == "-o" and i + 1 < len(words)]


class Logs:
    """The lines both caches log from now on (the caches are shared: earlier lines are not this test's)."""

    def __init__(self):
        settings = lab_settings.load()
        self.apt = cache.apt_log_dir(settings) / "apt-cacher.log"
        self.pip = cache.pip_events_file(settings)
        self.offsets = {path: path.stat().st_size if path.exists() else 0 for path in (self.apt, self.pip)}

    def new_lines(self, path: Path) -> list[list[str]]:
        with open(path) as handle:
            handle.seek(self.offsets[path])
            return [line.rstrip("\n").split("|") for line in handle if line.strip()]

    def apt_records(self, needle: str) -> list[str]:
        """apt-cacher-ng: 'I' = fetched from a mirror, 'O' = served to a host."""
        return [fields[1] for fields in self.new_lines(self.apt) if len(fields) >= 5 and needle in fields[4]]

    def pip_records(self, needle: str) -> list[str]:
        """The pip proxy: 'fetch' = fetched from the index's file host, 'serve' = served from the cache."""
        return [fields[1] for fields in self.new_lines(self.pip) if len(fields) >= 5 and needle in fields[4]]


def install_both(target) -> None:
    apt = target.run(
        f"sudo DEBIAN_FRONTEND=noninteractive sh -c 'apt-get update -q && apt-get install -y -q {APT_PACKAGE} python3-venv'"
    )
    assert apt.rc == 0, apt.stdout + apt.stderr
    pip = target.run(
        f"python3 -m venv /tmp/cache-test && /tmp/cache-test/bin/pip install --no-deps {PIP_PACKAGE}=={PIP_VERSION}"
    )
    assert pip.rc == 0, pip.stdout + pip.stderr


@pytest.fixture(scope="module")
def ssh_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ssh")


@pytest.fixture(scope="module")
def first_host(ssh_dir):
    lab("up", HOSTS[0])
    try:
        yield host(HOSTS[0], ssh_dir)
    finally:
        lab("down", *HOSTS, check=False)


def test_both_caches_answer_on_the_bridge(first_host):
    caches = {c["kind"]: c for c in json.loads(lab("status", "--json").stdout)["package_cache"]}
    assert caches["apt"]["answering"] and caches["pip"]["answering"], caches
    conf = first_host.file("/etc/pip.conf").content_string
    assert f"index-url = {caches['pip']['url']}/index/" in conf
    assert first_host.file(cache.APT_PROXY_CONF).contains("Proxy-Auto-Detect")


def test_up_again_keeps_the_running_caches(first_host):  # pylint: disable=unused-argument
    settings = lab_settings.load()
    before = {kind: (cache.run_dir(settings) / f"{kind}.pid").read_text() for kind in cache.KINDS}
    lab("up", HOSTS[0])
    after = {kind: (cache.run_dir(settings) / f"{kind}.pid").read_text() for kind in cache.KINDS}
    assert before == after


def test_apt_uses_the_cache_for_mirrors_only(first_host):
    uri = first_host.run("sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources | head -n1").stdout.split()[0]
    through = first_host.run(f"{cache.APT_PROXY_SCRIPT} {uri}").stdout.strip()
    assert through == cache.url(lab_settings.load(), "apt")
    # A site that is not one of the machine's mirrors: apt goes there itself (the cache would refuse it).
    assert first_host.run(f"{cache.APT_PROXY_SCRIPT} http://198.51.100.7/").stdout.strip() == "DIRECT"


def test_first_host_installs_through_the_caches(first_host):
    logs = Logs()
    install_both(first_host)
    assert first_host.package(APT_PACKAGE).is_installed
    assert "O" in logs.apt_records(f"/{APT_PACKAGE}_"), "the .deb did not pass through the apt cache"
    assert "serve" in logs.pip_records(f"{PIP_PACKAGE}-{PIP_VERSION}-"), "the wheel did not come from the pip cache"


def test_second_host_is_served_from_the_cache(first_host, ssh_dir):  # pylint: disable=unused-argument
    logs = Logs()
    lab("up", HOSTS[1])
    second = host(HOSTS[1], ssh_dir)
    install_both(second)
    assert second.package(APT_PACKAGE).is_installed
    assert second.run(f"/tmp/cache-test/bin/python -c 'import {PIP_PACKAGE}'").rc == 0
    apt_records = logs.apt_records(f"/{APT_PACKAGE}_")
    pip_records = logs.pip_records(f"{PIP_PACKAGE}-{PIP_VERSION}-")
    # Served to the second host, and not fetched again from a mirror.
    assert "O" in apt_records and "I" not in apt_records, apt_records
    assert "serve" in pip_records and "fetch" not in pip_records, pip_records
