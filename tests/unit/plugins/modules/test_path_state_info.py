# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.path_state_info: one look at many paths, in the line format the roles compare against."""

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

from ansible_collections.oceanid.fleet.plugins.modules import path_state_info


def run(capsys, check_mode=False, **args):
    args.update(_ansible_check_mode=check_mode)
    with (
        patch_module_args(args),
        mock.patch.object(module_utils_internal, "is_controller", False),
        pytest.raises(SystemExit),
    ):
        path_state_info.main()
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
