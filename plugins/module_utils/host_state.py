# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a host has now, read without changing anything: paths, systemd units, Debian packages, Python
distributions in a virtualenv, users and groups. oceanid.fleet.host_state_info returns it in one module run,
so that a role can hand its modules only what differs (an unchanged run then costs one module run per role
instead of one or two per file, unit, package and user)."""

from __future__ import annotations

import glob
import grp
import hashlib
import os
import pwd
import re
import stat


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def path_state(path):
    """{kind, mode, owner, group, detail} of path (a final symlink not followed), or None when it does not exist.
    detail is the SHA-1 of a regular file's bytes, the target of a link, else "-"."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    kind, detail = "other", "-"
    if stat.S_ISDIR(info.st_mode):
        kind = "directory"
    elif stat.S_ISLNK(info.st_mode):
        kind, detail = "link", os.readlink(path)
    elif stat.S_ISREG(info.st_mode):
        digest = hashlib.sha1()  # nosec: a content fingerprint compared with the controller's, not a security check
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        kind, detail = "file", digest.hexdigest()
    return {
        "kind": kind,
        "mode": "%04o" % stat.S_IMODE(info.st_mode),
        "owner": _name(pwd.getpwuid, info.st_uid),
        "group": _name(grp.getgrgid, info.st_gid),
        "detail": detail,
    }


def path_line(path, state):
    """The one-line form roles compare against: "<kind> <mode> <owner> <group> <detail> <path>"."""
    return " ".join([state["kind"], state["mode"], state["owner"], state["group"], state["detail"], path])


_UNIT_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "UnitFileState")


def parse_systemctl_show(text):
    """Blocks of `systemctl show -p Id,LoadState,... unit...` (one block per unit, blank-line separated) as
    {unit: {load, active, sub, enabled}}; enabled is UnitFileState ("enabled", "disabled", "" when not found)."""
    units = {}
    for block in text.strip().split("\n\n"):
        values = {}
        for line in block.splitlines():
            key, _sep, value = line.partition("=")
            values[key] = value
        if values.get("Id"):
            units[values["Id"]] = {
                "load": values.get("LoadState", ""),
                "active": values.get("ActiveState", ""),
                "sub": values.get("SubState", ""),
                "enabled": values.get("UnitFileState", ""),
            }
    return units


def unit_states(run_command, units):
    """{unit: {load, active, sub, enabled}} for each unit, in one systemctl call; a unit systemd does not know
    has load "not-found". Raises RuntimeError when systemctl itself fails."""
    if not units:
        return {}
    # Full names (".service" added where no suffix is given) so that Id matches what was asked.
    names = [unit if "." in unit else unit + ".service" for unit in units]
    rc, out, err = run_command(["systemctl", "show", "--property=" + ",".join(_UNIT_PROPERTIES), "--"] + names)
    if rc != 0:
        raise RuntimeError("systemctl show failed (rc %s): %s" % (rc, (err or out).strip()))
    parsed = parse_systemctl_show(out)
    result = {}
    for asked, name in zip(units, names):
        result[asked] = parsed.get(name, {"load": "not-found", "active": "inactive", "sub": "dead", "enabled": ""})
    return result


def parse_dpkg_query(text):
    """Lines "<package> <status-abbrev> <version>" as {package: version} for packages installed as wanted
    ("ii": want install, status installed, no error)."""
    installed = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].strip() == "ii":
            installed[parts[0].split(":")[0]] = parts[2]
    return installed


def package_versions(run_command, packages):
    """{package: version} of the Debian packages given that are installed; the others are left out."""
    if not packages:
        return {}
    rc, out, err = run_command(
        ["dpkg-query", "--show", "--showformat=${Package}\t${db:Status-Abbrev}\t${Version}\n", "--"] + list(packages)
    )
    # dpkg-query exits 1 when some package is unknown and still prints the others.
    if rc not in (0, 1):
        raise RuntimeError("dpkg-query failed (rc %s): %s" % (rc, (err or out).strip()))
    return parse_dpkg_query(out)


def canonical_distribution_name(name):
    """PEP 503 normalisation: Label_Studio, label.studio and label-studio are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def python_distributions(venv):
    """{canonical name: version} of every distribution installed in the virtualenv (read from the .dist-info
    metadata, without starting its Python); {} when there is no virtualenv there."""
    found = {}
    for metadata in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages", "*.dist-info", "METADATA")):
        name = version = None
        with open(metadata, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break  # the headers end at the first blank line
                if line.startswith("Name:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Version:"):
                    version = line.split(":", 1)[1].strip()
                if name and version:
                    break
        if name and version:
            found[canonical_distribution_name(name)] = version
    return found


def user_state(name):
    """{uid, gid, group, home, shell} of a local user, or None."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return {
        "uid": entry.pw_uid,
        "gid": entry.pw_gid,
        "group": _name(grp.getgrgid, entry.pw_gid),
        "home": entry.pw_dir,
        "shell": entry.pw_shell,
    }


def group_state(name):
    """{gid, members} of a local group, or None."""
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return None
    return {"gid": entry.gr_gid, "members": sorted(entry.gr_mem)}
