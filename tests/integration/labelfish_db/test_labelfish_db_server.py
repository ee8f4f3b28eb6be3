# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The labelfish_db role installing Debian's PostgreSQL on a lab host (labelfish_db_install_server: true).

Boots its own lab host (root only; its name carries this test's prefix, so a running demo lab is left alone),
runs the role over SSH as the lab's fleet does, then logs in from this machine over the lab network with the URL
the role hands to the application.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re

import pytest

from tests.integration.labelfish_db import pg_cluster
from tests.integration.labelfish_db.conftest import PASSWORDS, PLAYBOOK, Run, run_playbook
from tests.support.ansible_env import isolated_ansible_env
from tests.support.lab_cli import lab as _lab

HOST = "itdb-pg"
DRIFT_GUARD = {"ANSIBLE_CALLBACKS_ENABLED": "oceanid.fleet.drift_guard"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")


@pytest.fixture(scope="module")
def lab_host():
    if not pg_cluster.available():
        pytest.skip(f"needs PostgreSQL's client in {pg_cluster.PG_BIN}")
    _lab("up", HOST)
    yield json.loads(_lab("inventory", "--host", HOST).stdout)
    _lab("down", HOST, check=False)


class LabPlay:
    def __init__(self, directory, host_vars: dict) -> None:
        self.directory = directory
        self.address = host_vars["ansible_host"]
        self.url_file = directory / "database_url"
        self.env = isolated_ansible_env(directory, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_PIPELINING="True")
        inventory = {"all": {"hosts": {"db": {**host_vars, "ansible_python_interpreter": "/usr/bin/python3"}}}}
        (directory / "inventory.json").write_text(json.dumps(inventory), encoding="utf-8")
        (directory / "site.yml").write_text(PLAYBOOK, encoding="utf-8")
        network = ipaddress.ip_network(f"{self.address}/24", strict=False)
        self.variables = {
            "test_become": True,
            "labelfish_db_install_server": True,
            "labelfish_db_server_listen_addresses": ["localhost", self.address],
            "labelfish_db_server_client_cidrs": ["127.0.0.1/32", "::1/128", str(network)],
            "labelfish_db_client_host": self.address,
            "url_file": str(self.url_file),
            **PASSWORDS,
        }

    def run(self, *args: str, env: dict[str, str] | None = None) -> Run:
        return run_playbook(self.directory, {**self.env, **(env or {})}, "inventory.json", self.variables, args)


@pytest.fixture(scope="module")
def runs(lab_host, tmp_path_factory):
    play = LabPlay(tmp_path_factory.mktemp("labelfish-server"), lab_host)
    fresh_check = play.run("--check")
    first = play.run()
    assert first.rc == 0, first.output[-5000:]
    second = play.run()
    converged_check = play.run("--check", env=DRIFT_GUARD)
    return play, {"fresh_check": fresh_check, "first": first, "second": second, "converged_check": converged_check}


def test_check_on_a_fresh_host_says_what_it_cannot_compare(runs):
    run = runs[1]["fresh_check"]
    assert run.rc == 0, run.output[-5000:]
    # Which of the two are missing depends on the lab host's image (psycopg2 may be there already); the point is
    # that check mode names them and compares nothing further instead of failing in apt or on a missing server.
    assert re.search(
        r"check mode - (postgresql and python3-psycopg2|postgresql|python3-psycopg2) would be installed first",
        " ".join(run.output.split()),
    ), run.output[-5000:]


def test_second_converge_and_check_change_nothing(runs):
    assert runs[1]["first"].recap()["changed"] > 0
    for name in ("second", "converged_check"):
        run = runs[1][name]
        assert run.rc == 0, run.output[-5000:]
        assert run.recap()["changed"] == 0, (name, run.output[-5000:])


def test_the_application_url_reaches_the_database_over_the_network(runs):
    play = runs[0]
    url = play.url_file.read_text(encoding="utf-8")
    assert f"@{play.address}:5432/labelfish" in url
    result = pg_cluster.psql_url(url, "SHOW timezone", "SELECT current_schema()")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["UTC", "labelfish"]
