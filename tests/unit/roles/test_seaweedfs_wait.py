# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The seaweedfs role's wait helper (restarts, health gates, the mount's filer wait) against loopback servers.

Molecule runs it against real SeaweedFS; these tests pin its semantics: check order, --require and
--contains, --any, the timeout, the FUSE mount check on a given mountinfo, and how S3 answers are judged.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.support.http_routes import serve_routes

HELPER = Path(__file__).resolve().parents[3] / "roles" / "seaweedfs" / "files" / "seaweedfs_wait.py"
_SPEC = importlib.util.spec_from_file_location("seaweedfs_wait", HELPER)
wait = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(wait)


@pytest.fixture(name="server")
def fixture_server():
    with serve_routes() as server:
        yield server


def test_require_and_contains_qualify_the_check_before_them(server):
    server.routes["/cluster/status"] = (200, json.dumps({"IsLeader": True, "Leader": ""}))
    server.routes["/dir/status"] = (200, '{"Url":"10.0.0.2:8080"}')
    args = [
        "--timeout",
        "0",
        "--check",
        f"{server.url}/dir/status",
        "--contains",
        '"Url":"10.0.0.2:8080"',
        "--check",
        f"{server.url}/cluster/status",
        "--require",
        "Leader",
    ]
    assert wait.main(args) == 1  # no leader yet
    server.routes["/cluster/status"] = (200, json.dumps({"IsLeader": True, "Leader": "10.0.0.1:9333"}))
    assert wait.main(args) == 0
    assert wait.main(["--timeout", "0", "--check", f"{server.url}/dir/status", "--contains", "10.0.0.3:8080"]) == 1


def test_every_check_must_pass_unless_any(server):
    server.routes["/healthz"] = (200, "")
    dead = f"{server.url}/missing"
    assert wait.main(["--timeout", "0", "--check", dead, "--check", f"{server.url}/healthz"]) == 1
    assert wait.main(["--any", "--timeout", "0", "--check", dead, "--check", f"{server.url}/healthz"]) == 0


def test_it_waits_until_the_timeout_and_says_why(server, capsys):
    assert wait.main(["--timeout", "1.5", "--check", f"{server.url}/healthz"]) == 1
    assert "not healthy after 1.5 s" in capsys.readouterr().err
    assert len(server.seen) >= 2  # it tried again before giving up


def test_show_prints_the_body_once_the_checks_pass(server, capsys):
    topology = json.dumps({"Topology": {"DataCenters": []}})
    server.routes["/healthz"] = (200, "")
    server.routes["/dir/status"] = (200, topology)
    assert wait.main(["--timeout", "0", "--check", f"{server.url}/healthz", "--show", f"{server.url}/dir/status"]) == 0
    assert capsys.readouterr().out == topology
    # A check that fails prints nothing; a body that cannot be read is a failure too.
    assert wait.main(["--timeout", "0", "--check", f"{server.url}/missing", "--show", f"{server.url}/dir/status"]) == 1
    assert wait.main(["--timeout", "0", "--check", f"{server.url}/healthz", "--show", f"{server.url}/missing"]) == 1
    assert capsys.readouterr().out == ""


def test_a_qualifier_without_a_check_is_refused():
    with pytest.raises(SystemExit):
        wait.main(["--require", "Leader"])
    with pytest.raises(SystemExit):
        wait.main(["--s3", "http://127.0.0.1:1"])  # needs --s3-config


def test_mount_check_reads_mountinfo(tmp_path, monkeypatch):
    mounted = tmp_path / "with space"
    mounted.mkdir()
    escaped = str(mounted).replace(" ", "\\040")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - ext4 /dev/root rw\n"
        f"90 22 0:50 / {escaped} rw,nosuid,nodev,relatime shared:1 - fuse.seaweedfs 10.0.0.1:8888:/ rw,user_id=0\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(wait, "MOUNTINFO", str(mountinfo))
    assert wait.main(["--timeout", "0", "--mount", str(mounted)]) == 0
    assert wait.main(["--timeout", "0", "--mount", str(tmp_path)]) == 1  # not a fuse.seaweedfs mount
    # a mount whose daemon died: listed, but stat fails (Transport endpoint is not connected)
    monkeypatch.setattr(
        wait, "_stat_within", lambda directory, seconds: "[Errno 107] Transport endpoint is not connected"
    )
    assert wait.main(["--timeout", "0", "--mount", str(mounted)]) == 1


@pytest.mark.parametrize(
    "answer, anonymous, healthy",
    [
        ((200, "<ListAllMyBucketsResult/>"), (403, "<Error><Code>AccessDenied</Code></Error>"), True),
        ((403, "<Error><Code>AccessDenied</Code></Error>"), (403, "<Error><Code>AccessDenied</Code></Error>"), True),
        (
            (403, "<Error><Code>SignatureDoesNotMatch</Code></Error>"),
            (403, "<Error><Code>AccessDenied</Code></Error>"),
            False,
        ),
        (
            (403, "<Error><Code>InvalidAccessKeyId</Code></Error>"),
            (403, "<Error><Code>AccessDenied</Code></Error>"),
            False,
        ),
        ((200, "<ListAllMyBucketsResult/>"), (200, "<ListAllMyBucketsResult/>"), False),
    ],
    ids=["listed", "may-not-list", "bad-signature", "unknown-key", "anonymous-allowed"],
)
def test_s3_check_judges_the_answers(tmp_path, server, answer, anonymous, healthy):
    config = tmp_path / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {"name": "anonymous", "actions": ["Read"]},
                    {
                        "name": "models",
                        "credentials": [{"accessKey": "AKMODELS", "secretKey": "secret"}],
                        "actions": ["Admin"],
                    },
                ]
            }
        ),
        encoding="utf-8",
    )

    class _Routes(dict):
        def get(self, key, default=None):
            return answer if "Authorization" in server.seen[-1] else anonymous

    server.routes = _Routes()
    args = ["--timeout", "0", "--s3", server.url, "--s3-config", str(config), "--s3-anonymous-denied"]
    assert (wait.main(args) == 0) is healthy
    signed = [headers for headers in server.seen if "Authorization" in headers]
    assert signed and signed[0]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKMODELS/")
    assert "secret" not in json.dumps(server.seen).replace("SignedHeaders", "")


def test_sigv4_scope_and_signed_headers():
    now = wait.datetime.datetime(2026, 11, 22, 12, 0, 0, tzinfo=wait.datetime.timezone.utc)
    headers = wait.sigv4_headers("http://10.0.0.1:8333/", "AK", "SK", now)
    assert headers["x-amz-date"] == "20261122T120000Z"
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="
    )
    # deterministic, and the secret changes it
    assert headers == wait.sigv4_headers("http://10.0.0.1:8333/", "AK", "SK", now)
    assert headers["Authorization"] != wait.sigv4_headers("http://10.0.0.1:8333/", "AK", "SK2", now)["Authorization"]
