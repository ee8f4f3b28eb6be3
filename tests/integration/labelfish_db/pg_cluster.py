# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A throw-away PostgreSQL cluster on a free loopback port, and psql as any role against it.

initdb under a temporary directory with SCRAM authentication and a superuser password, pg_ctl on 127.0.0.1;
run as the `postgres` OS user when the tests run as root (the server refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PG_BIN = Path(os.environ.get("OCEANID_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file() and (PG_BIN / "psql").is_file()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PgCluster:
    """One cluster: ``start()``, ``psql()`` as a role with its password, ``stop()`` (removes everything)."""

    def __init__(self, superuser_password: str) -> None:
        self.superuser_password = superuser_password
        self.port = _free_port()
        # Not under pytest's tmp_path: that is 0700 root, and the server runs as postgres.
        self.root = Path(tempfile.mkdtemp(prefix="oceanid-labelfish-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_postgres = os.geteuid() == 0

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120, **kwargs)

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n", encoding="utf-8")
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        )
        pwfile.unlink()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"])

    def stop(self) -> None:
        if self.data.is_dir():
            subprocess.run(
                (["runuser", "-u", "postgres", "--"] if self._as_postgres else [])
                + [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql: str, user: str, password: str, database: str = "labelfish") -> subprocess.CompletedProcess:
        """Run ``sql`` as ``user`` over TCP (as an application would); not checked: the caller reads rc and stderr."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGPASSWORD": password,
            "PGCONNECT_TIMEOUT": "10",
        }
        return subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", database, "-XAtq"]
            + ["-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )


def psql_url(url: str, *statements: str) -> subprocess.CompletedProcess:
    """Run ``statements`` over a connection URL (how the application is told where its database is)."""
    commands = [part for sql in statements for part in ("-c", sql)]
    return subprocess.run(
        [str(PG_BIN / "psql"), url, "-XAtq", "-v", "ON_ERROR_STOP=1", *commands],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGCONNECT_TIMEOUT": "10"},
        check=False,
        timeout=60,
    )
