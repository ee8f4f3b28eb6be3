# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the labelfish_db role's tests: a real PostgreSQL 15 and ansible-playbook running the role on it.

The role runs in external-server mode (labelfish_db_install_server: false) with a local connection; its
community.postgresql modules run on Debian's /usr/bin/python3 with python3-psycopg2 (installed here when missing,
as `make deps` installs Debian packages), so the venv needs no database driver.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.integration.labelfish_db import pg_cluster
from tests.support.ansible_env import REPO_ROOT, isolated_ansible_env

SYSTEM_PYTHON = "/usr/bin/python3"

# Passwords with the characters a URL or a shell would trip over.
ADMIN_PASSWORD = "Adm:n@pw/%+ 1"
PASSWORDS = {
    "labelfish_db_owner_password": "own@er:pa/ss%word?#",
    "labelfish_db_rw_password": "rw-Secret-7d1&x=y",
    "labelfish_db_ro_password": "ro Secret#9'\"",
}

# The URL goes back to a file on the controller; become only for a lab host (test_become).
PLAYBOOK = """\
- name: The labelfish database
  hosts: db
  gather_facts: false
  become: "{{ test_become | default(false) }}"
  roles:
    - role: oceanid.fleet.labelfish_db
  post_tasks:
    - name: Hand the application's URL to the test
      ansible.builtin.copy:
        content: "{{ labelfish_db_database_url }}"
        dest: "{{ url_file }}"
        mode: "0600"
      delegate_to: localhost
      become: false
      no_log: true
      when: not ansible_check_mode
"""


def _psycopg2_for_system_python() -> bool:
    probe = [SYSTEM_PYTHON, "-c", "import psycopg2"]
    if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "python3-psycopg2"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        check=False,
        timeout=600,
    )
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@dataclass
class Run:
    rc: int
    output: str

    def recap(self) -> dict[str, int]:
        """The play recap's counters for the host (ok, changed, failed, ...)."""
        match = re.search(r"^db\s+:\s+(.*)$", self.output, re.MULTILINE)
        assert match, f"no play recap in:\n{self.output[-3000:]}"
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


class Play:
    """ansible-playbook running the role against the cluster, with the variables of one test."""

    def __init__(self, directory: Path, env: dict[str, str], cluster: pg_cluster.PgCluster) -> None:
        self.directory = directory
        self.env = env
        self.cluster = cluster
        self.url_file = directory / "database_url"
        (directory / "inventory.ini").write_text(
            f"db ansible_connection=local ansible_python_interpreter={SYSTEM_PYTHON}\n", encoding="utf-8"
        )
        (directory / "site.yml").write_text(PLAYBOOK, encoding="utf-8")

    def admin_url(self, password: str = ADMIN_PASSWORD) -> str:
        return (
            f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{self.cluster.port}/postgres?sslmode=disable"
        )

    def variables(self, **overrides) -> dict:
        return {
            "labelfish_db_admin_url": self.admin_url(),
            "labelfish_db_install_psycopg2": False,
            "url_file": str(self.url_file),
            **PASSWORDS,
            **overrides,
        }

    def run(self, *args: str, env: dict[str, str] | None = None, **overrides) -> Run:
        return run_playbook(
            self.directory, {**self.env, **(env or {})}, "inventory.ini", self.variables(**overrides), args
        )


def run_playbook(directory: Path, env: dict[str, str], inventory: str, variables: dict, args) -> Run:
    """ansible-playbook site.yml of ``directory`` with ``variables`` as extra vars (a file: they hold passwords)."""
    vars_file = directory / "vars.json"
    vars_file.write_text(json.dumps(variables), encoding="utf-8")
    result = subprocess.run(
        [
            str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            inventory,
            "site.yml",
            "-e",
            f"@{vars_file}",
            *args,
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return Run(result.returncode, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def cluster():
    if not pg_cluster.available():
        pytest.skip(f"needs PostgreSQL's binaries in {pg_cluster.PG_BIN}")
    if not _psycopg2_for_system_python():
        pytest.skip(f"needs python3-psycopg2 for {SYSTEM_PYTHON}")
    server = pg_cluster.PgCluster(ADMIN_PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def play(cluster, tmp_path_factory) -> Play:
    directory = tmp_path_factory.mktemp("labelfish-play")
    env = isolated_ansible_env(directory, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_INJECT_FACT_VARS="False")
    return Play(directory, env, cluster)
