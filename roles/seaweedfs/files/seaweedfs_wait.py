# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Wait until SeaweedFS components are healthy, optionally restarting a unit first.

Installed by the oceanid.fleet.seaweedfs role as /usr/local/libexec/oceanid/seaweedfs_wait.py and run
with python3. The role's rolling restart runs ``seaweedfs_wait.py --restart UNIT --check URL ...`` one host
at a time, so the next host restarts only once this one is healthy again; the mount unit runs
``seaweedfs_wait.py --any --check FILER_URL ...`` before it mounts.

Checks, in the order given:
  --check URL         the URL answers 2xx
  --require KEY       ... and its JSON body has a non-empty KEY (applies to the check before it)
  --contains TEXT     ... and its body contains TEXT (applies to the check before it)
  --mount DIR         DIR is a live fuse.seaweedfs mount (listed in mountinfo, and stat answers)
  --s3 URL            the S3 gateway accepts every identity of --s3-config (ListBuckets signed with
                      AWS Signature V4 answers 200, or AccessDenied for an identity that may not list)
                      and, with --s3-anonymous-denied, refuses an unsigned request with 403
Once they pass, --show URL prints the body of URL on stdout (the role's health gate reads the master's topology
with it in the same run). Secrets are read from the gateway's own configuration file, never from the command line, and never printed.
Exit status 0 when all checks pass (with --any: one of them) within --timeout seconds, else 1 with
the last reason on stderr.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MOUNTINFO = "/proc/self/mountinfo"


class _AppendCheck(argparse.Action):
    """Append a check to the ordered list of checks."""

    def __call__(self, parser, namespace, values, option_string=None):
        checks = getattr(namespace, "checks", None) or []
        kind = {"--mount": "mount", "--s3": "s3"}.get(option_string, "url")
        checks.append({"kind": kind, "target": values, "require": None, "contains": None})
        namespace.checks = checks


class _Qualify(argparse.Action):
    """Attach --require/--contains to the check given just before."""

    def __call__(self, parser, namespace, values, option_string=None):
        checks = getattr(namespace, "checks", None) or []
        if not checks or checks[-1]["kind"] != "url":
            parser.error(f"{option_string} must follow a --check")
        checks[-1][self.dest] = values


def _parse(argv):
    parser = argparse.ArgumentParser(prog="seaweedfs-wait", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--restart", metavar="UNIT", help="restart this systemd unit first")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    parser.add_argument("--any", action="store_true", help="one passing check is enough")
    parser.add_argument("--check", action=_AppendCheck, dest="checks", metavar="URL")
    parser.add_argument("--mount", action=_AppendCheck, dest="checks", metavar="DIR")
    parser.add_argument("--s3", action=_AppendCheck, dest="checks", metavar="URL")
    parser.add_argument("--s3-config", metavar="FILE", help="the gateway's identities (weed s3 -config)")
    parser.add_argument("--s3-anonymous-denied", action="store_true", help="an unsigned request must get 403")
    parser.add_argument("--require", action=_Qualify, metavar="KEY")
    parser.add_argument("--contains", action=_Qualify, metavar="TEXT")
    parser.add_argument("--show", metavar="URL", help="once the checks pass, print the body of URL")
    args = parser.parse_args(argv)
    if not args.checks:
        parser.error("give at least one --check, --mount or --s3")
    if any(check["kind"] == "s3" for check in args.checks) and not args.s3_config:
        parser.error("--s3 needs --s3-config")
    return args


def _check_url(check):
    """Return None when the URL check passes, else the reason."""
    request = urllib.request.Request(check["target"], headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return f"{check['target']} answered HTTP {error.code}"
    except (OSError, ValueError) as error:
        return f"{check['target']}: {error}"
    if check["contains"] is not None and check["contains"] not in body:
        return f"{check['target']} does not list {check['contains']}"
    if check["require"] is not None:
        try:
            value = json.loads(body).get(check["require"])
        except (ValueError, AttributeError):
            return f"{check['target']} did not answer a JSON object"
        if not value:
            return f"{check['target']} has no {check['require']} yet"
    return None


def _fetch(url):
    """(body, None) of a GET of url that answers 2xx, else (None, the reason)."""
    try:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode("utf-8", "replace"), None
    except urllib.error.HTTPError as error:
        return None, f"{url} answered HTTP {error.code}"
    except (OSError, ValueError) as error:
        return None, f"{url}: {error}"


def _unescape(field):
    """Undo the octal escapes of /proc/self/mountinfo (space is \\040)."""
    return field.encode("latin-1").decode("unicode_escape")


def _fstype(directory):
    """The filesystem type mounted at directory (the last mount there wins), or None."""
    found = None
    with open(MOUNTINFO, encoding="utf-8") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            separator = fields.index("-")
            if _unescape(fields[4]) == directory:
                found = fields[separator + 1]
    return found


def _stat_within(directory, seconds):
    """stat() the directory in a thread, so a hung FUSE daemon cannot hang us; None when it answered."""
    outcome = {}

    def _run():
        try:
            os.stat(directory)
            outcome["error"] = None
        except OSError as error:
            outcome["error"] = str(error)

    worker = threading.Thread(target=_run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return "stat did not answer"
    return outcome["error"]


def _check_mount(check):
    directory = os.path.realpath(check["target"])
    fstype = _fstype(directory)
    if fstype != "fuse.seaweedfs":
        return f"{directory} is not a fuse.seaweedfs mount (found {fstype or 'nothing'})"
    error = _stat_within(directory, 5)
    if error:
        return f"{directory} is mounted but not live: {error}"
    return None


def _hmac(key, message):
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sigv4_headers(url, access_key, secret_key, now, region="us-east-1"):
    """Headers that sign a GET of url with an empty body (AWS Signature Version 4, service s3)."""
    parts = urllib.parse.urlsplit(url)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    datestamp = now.strftime("%Y%m%d")
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    canonical_headers = f"host:{parts.netloc}\nx-amz-content-sha256:{_EMPTY_SHA256}\nx-amz-date:{amz_date}\n"
    signed_headers = "host;x-amz-content-sha256;x-amz-date"
    canonical_request = "\n".join(
        ["GET", urllib.parse.quote(parts.path or "/"), query, canonical_headers, signed_headers, _EMPTY_SHA256]
    )
    scope = f"{datestamp}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _hmac(("AWS4" + secret_key).encode("utf-8"), datestamp)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": _EMPTY_SHA256,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
    }


def _s3_get(url, headers):
    """(HTTP status, S3 error code) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            response.read()
            return response.status, ""
    except urllib.error.HTTPError as error:
        match = re.search(r"<Code>([^<]+)</Code>", error.read().decode("utf-8", "replace"))
        return error.code, match.group(1) if match else ""
    except (OSError, ValueError) as error:
        return 0, str(error)


def _check_s3(check, config_file, anonymous_denied):
    """Every identity of the gateway's configuration is accepted; anonymous is refused when asked."""
    url = check["target"].rstrip("/") + "/"
    with open(config_file, encoding="utf-8") as handle:
        identities = json.load(handle).get("identities", [])
    for identity in identities:
        for credential in identity.get("credentials", []):
            headers = sigv4_headers(
                url, credential["accessKey"], credential["secretKey"], datetime.datetime.now(datetime.UTC)
            )
            status, code = _s3_get(url, headers)
            if status != 200 and not (status == 403 and code == "AccessDenied"):
                return f"S3 at {url} refused identity {identity.get('name')}: HTTP {status} {code}"
    if anonymous_denied:
        status, code = _s3_get(url, {})
        if status != 403:
            return (
                f"S3 at {url} answered an unsigned request with HTTP {status} {code}, not 403: anonymous access is on"
            )
    return None


def _run_checks(checks, any_passes, options):
    """None when the checks pass, else the reason of the first failing one."""
    reasons = []
    for check in checks:
        if check["kind"] == "mount":
            reason = _check_mount(check)
        elif check["kind"] == "s3":
            reason = _check_s3(check, options.s3_config, options.s3_anonymous_denied)
        else:
            reason = _check_url(check)
        if reason is None and any_passes:
            return None
        if reason is not None:
            reasons.append(reason)
            if not any_passes:
                break
    return "; ".join(reasons) if reasons else None


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.restart:
        subprocess.run(["systemctl", "restart", args.restart], check=True)
    deadline = time.monotonic() + args.timeout
    while True:
        reason = _run_checks(args.checks, args.any, args)
        if reason is None and args.show:
            body, reason = _fetch(args.show)
            if reason is None:
                sys.stdout.write(body)
        if reason is None:
            return 0
        if time.monotonic() >= deadline:
            sys.stderr.write(f"seaweedfs-wait: not healthy after {args.timeout:g} s: {reason}\n")
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
