# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.host_state_info: one look at many paths, in the line format the roles compare against."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
from unittest import mock

import pytest
from ansible.module_utils import _internal as module_utils_internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.oceanid.fleet.plugins.modules import host_state_info


def run(capsys, check_mode=False, **args):
    args.update(_ansible_check_mode=check_mode)
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        pytest.raises(SystemExit),
    ):
        host_state_info.main()
    return json.loads(capsys.readouterr().out)


def test_directory_file_link_and_missing(tmp_path, capsys):
    owner, group = pwd.getpwuid(os.getuid())[0], grp.getgrgid(os.getgid())[0]
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o750)
    directory.chmod(0o750)
    program = directory / "app.py"
    program.write_bytes(b"print('hi')\n")
    program.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(program)
    result = run(capsys, check_mode=True, paths=[str(directory), str(program), str(link), str(tmp_path / "missing")])
    assert result["changed"] is False
    assert result["lines"] == [
        f"directory 0750 {owner} {group} - {directory}",
        f"file 0644 {owner} {group} {hashlib.sha1(program.read_bytes()).hexdigest()} {program}",
        f"link 0777 {owner} {group} {program} {link}",
    ]
    assert result["paths"][str(directory)] == {
        "kind": "directory",
        "mode": "0750",
        "owner": owner,
        "group": group,
        "detail": "-",
    }
    assert str(tmp_path / "missing") not in result["paths"]


def test_a_large_file_is_hashed_in_blocks(tmp_path, capsys):
    data = os.urandom(3 << 20)
    path = tmp_path / "blob"
    path.write_bytes(data)
    result = run(capsys, paths=[str(path)])
    assert result["paths"][str(path)]["detail"] == hashlib.sha1(data).hexdigest()


def test_nothing_asked_is_nothing_returned(capsys):
    result = run(capsys)
    assert result["changed"] is False
    assert {key: result[key] for key in ("lines", "paths", "units", "packages", "virtualenvs", "users", "groups")} == {
        "lines": [],
        "paths": {},
        "units": {},
        "packages": {},
        "virtualenvs": {},
        "users": {},
        "groups": {},
    }


def test_units_and_packages_in_one_call_each(capsys):
    show = (
        "Id=app.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\n"
        "Id=gone.timer\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n"
    )
    dpkg = "python3-venv\tii \t3.11.2-1+b1\nacl\trc \t2.3.1-3\n"
    calls = []

    def fake_run_command(self, argv, **kwargs):
        calls.append(argv)
        if argv[0] == "systemctl":
            return 0, show, ""
        return 1, dpkg, "dpkg-query: no packages found matching missing\n"

    with mock.patch("ansible.module_utils.basic.AnsibleModule.run_command", fake_run_command):
        result = run(capsys, units=["app", "gone.timer"], packages=["python3-venv", "acl", "missing"])
    assert [argv[0] for argv in calls] == ["systemctl", "dpkg-query"]
    assert calls[0][-2:] == ["app.service", "gone.timer"]
    assert result["units"] == {
        "app": {"load": "loaded", "active": "active", "sub": "running", "enabled": "enabled"},
        "gone.timer": {"load": "not-found", "active": "inactive", "sub": "dead", "enabled": ""},
    }
    # acl is only configuration-remaining ("rc"): not installed.
    assert result["packages"] == {"python3-venv": "3.11.2-1+b1"}


def test_systemctl_failing_is_a_clear_failure(capsys):
    with mock.patch(
        "ansible.module_utils.basic.AnsibleModule.run_command",
        lambda self, argv, **kwargs: (1, "", "System has not been booted with systemd"),
    ):
        result = run(capsys, units=["app"])
    assert result["failed"] is True
    assert "systemctl show failed" in result["msg"] and "not been booted" in result["msg"]


def test_virtualenv_distributions_by_canonical_name(tmp_path, capsys):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    for folder, name, version in (
        ("label_studio-1.22.0.dist-info", "label-studio", "1.22.0"),
        ("Django-5.1.dist-info", "Django", "5.1"),
        ("zope.interface-7.0.dist-info", "zope.interface", "7.0"),
    ):
        (site / folder).mkdir(parents=True)
        (site / folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n")
    result = run(capsys, virtualenvs=[str(tmp_path / "venv"), str(tmp_path / "none")])
    assert result["virtualenvs"] == {
        str(tmp_path / "venv"): {"label-studio": "1.22.0", "django": "5.1", "zope-interface": "7.0"},
        str(tmp_path / "none"): {},
    }


def test_users_and_groups(capsys):
    me = pwd.getpwuid(os.getuid())
    my_group = grp.getgrgid(os.getgid())
    result = run(capsys, users=[me.pw_name, "no-such-user-oceanid"], groups=[my_group.gr_name, "no-such-group-oceanid"])
    assert result["users"] == {
        me.pw_name: {
            "uid": me.pw_uid,
            "gid": me.pw_gid,
            "group": my_group.gr_name,
            "home": me.pw_dir,
            "shell": me.pw_shell,
        }
    }
    assert result["groups"] == {my_group.gr_name: {"gid": my_group.gr_gid, "members": sorted(my_group.gr_mem)}}
