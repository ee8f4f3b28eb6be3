"""The lab's own promises, on real hosts: up is idempotent, down leaves nothing, a hung host is killed.

Needs root (namespaces, mounts, cgroups); `make integration` runs it. Host names carry the test's
prefix so that a demo lab running beside it is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.lab_cli import lab

REPO_ROOT = Path(__file__).resolve().parents[3]
HOSTS = ["itlab-1", "itlab-2", "itlab-3"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


def sh(command: str) -> str:
    return subprocess.run(command, shell=True, capture_output=True, text=True, check=False).stdout


def running_hosts() -> list[dict]:
    return json.loads(lab("status", "--json").stdout)["hosts"]


def traces(names: list[str], whole_lab: bool) -> list[str]:
    """Every place a lab host (or, with whole_lab, the lab's network) could leave something behind."""
    found = []
    for name in names:
        if f"olab-{name}" in sh("ip netns list"):
            found.append(f"network namespace of {name}")
        if f"olab-{name}" in sh("mount"):
            found.append(f"mount of {name}")
        if Path(f"/sys/fs/cgroup/unified/olab/{name}").exists() or Path(f"/sys/fs/cgroup/systemd/olab/{name}").exists():
            found.append(f"cgroup of {name}")
        if f"--machine={name}" in sh("ps -eo args") or f"_supervise {name}" in sh("ps -eo args"):
            found.append(f"process of {name}")
    if whole_lab:
        if "olab" in sh("ip -o link"):
            found.append("a link: " + sh("ip -o link | grep olab"))
        if "OLAB" in sh("iptables-save"):
            found.append("iptables: " + sh("iptables-save | grep OLAB"))
        if Path("/run/oceanid-lab").exists():
            found.append("/run/oceanid-lab")
    return found


@pytest.fixture(scope="module")
def three_hosts():
    lab("up", *HOSTS)
    yield HOSTS
    lab("down", *HOSTS, check=False)


def test_up_makes_every_host_ssh_ready(three_hosts):
    for name in three_hosts:
        proc = lab("ssh", name, "--", "systemctl", "is-system-running", "--wait", check=False)
        assert proc.stdout.strip() == "running", (name, proc.stdout, proc.stderr)


def test_up_again_keeps_running_hosts(three_hosts):
    before = {h["name"]: h["pid"] for h in running_hosts() if h["name"] in three_hosts}
    lab("up", *three_hosts)
    after = {h["name"]: h["pid"] for h in running_hosts() if h["name"] in three_hosts}
    assert before == after and len(after) == 3


def test_hosts_have_distinct_identities(three_hosts):
    ids = {lab("ssh", name, "--", "cat", "/etc/machine-id").stdout.strip() for name in three_hosts}
    keys = {
        lab("ssh", name, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1] for name in three_hosts
    }
    assert len(ids) == 3 and len(keys) == 3


def test_egress_beyond_mirrors_is_refused(three_hosts):
    # A documentation address: the lab's FORWARD chain drops it before it leaves the machine.
    proc = lab(
        "ssh", three_hosts[0], "--", "timeout", "3", "bash", "-c", "'echo > /dev/tcp/198.51.100.7/443'", check=False
    )
    assert proc.returncode != 0


def test_down_of_a_hung_host_kills_it_through_its_cgroup(three_hosts):
    name = three_hosts[2]
    # A unit that never stops in time: systemd would wait for it far longer than the lab does.
    unit = (
        "[Service]\nExecStart=/bin/sleep infinity\nExecStop=/bin/sleep infinity\nTimeoutStopSec=infinity\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    lab(
        "ssh",
        name,
        "--",
        "sudo",
        "sh",
        "-c",
        f"'printf \"{unit}\" > /etc/systemd/system/hang.service && systemctl daemon-reload && systemctl start hang'",
    )
    started = time.monotonic()
    lab("down", name, env={"OCEANID_LAB_STOP_TIMEOUT": "3"})
    assert time.monotonic() - started < 30
    assert traces([name], whole_lab=False) == []


def test_down_leaves_nothing_behind(three_hosts):
    lab("down", *three_hosts)
    others = [h for h in running_hosts() if h["name"] not in three_hosts]
    assert traces(three_hosts, whole_lab=not others) == []
