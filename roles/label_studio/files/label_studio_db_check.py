# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Connect to PostgreSQL with the settings Label Studio is about to get, before they are written.

Run with the Label Studio virtualenv's Python (it has psycopg). The settings come as JSON on stdin
(host, port, name, user, password, sslmode, connect_timeout) so the password is never on a command line.
Exit 0 when the connection works; otherwise one line on stderr naming the server, database and user
(never the password) with PostgreSQL's reason, and exit 1.
"""

import json
import sys


def main():
    settings = json.load(sys.stdin)
    where = "PostgreSQL server {host}:{port}, database {name!r}, user {user!r}".format(**settings)
    try:
        import psycopg
    except ImportError as error:
        sys.stderr.write(f"cannot test {where}: psycopg is not importable ({error})\n")
        return 1
    params = {
        "host": settings["host"],
        "port": settings["port"],
        "dbname": settings["name"],
        "user": settings["user"],
        "password": settings["password"],
        "connect_timeout": settings["connect_timeout"],
        "application_name": "oceanid-label-studio-check",
    }
    if settings.get("sslmode"):
        params["sslmode"] = settings["sslmode"]
    try:
        with psycopg.connect(**params) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        reason = " ".join(str(error).split())
        if settings["password"]:
            reason = reason.replace(settings["password"], "********")
        sys.stderr.write(f"{where} refused the connection: {reason}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
