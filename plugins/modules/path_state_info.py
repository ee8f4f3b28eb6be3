#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: path_state_info
short_description: Kind, mode, owner, group and content digest of many paths in one module run
version_added: 0.1.0
description:
  - Looks at every path given (without following a final symlink) and reports what is there, in one module run
    instead of one M(ansible.builtin.stat) per path.
  - Roles use it to skip M(ansible.builtin.file) and M(ansible.builtin.copy) items that are already exactly as those
    modules would leave them, which is most of the cost of an unchanged run; any item that differs still goes to
    its module, so check mode, diff and C(changed) stay theirs.
  - Read-only; a path that does not exist is left out of the result.
author:
  - Oceanid fleet maintainers (@oceanid)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details: Read-only; it runs in check mode too.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  paths:
    description: The paths to look at.
    type: list
    elements: path
    required: true
"""

EXAMPLES = r"""
- name: Look at the program's files
  oceanid.fleet.path_state_info:
    paths: [/opt/app, /opt/app/app.py]
  register: app_paths

- name: Install the program unless it is already there with these bytes, mode and owner
  ansible.builtin.copy:
    src: app.py
    dest: /opt/app/app.py
    mode: "0644"
  when: ('file 0644 root root ' ~ (lookup('file', 'app.py') | hash('sha1')) ~ ' /opt/app/app.py') not in app_paths.lines
"""

RETURN = r"""
lines:
  description:
    - One line per existing path, C(<kind> <mode> <owner> <group> <detail> <path>), where kind is C(directory),
      C(file), C(link) or C(other), mode is four octal digits, and detail is the SHA-1 of a file's bytes, the target
      of a link, else C(-).
  returned: always
  type: list
  elements: str
  sample: ["directory 0755 root root - /opt/app", "file 0644 root root 3f786850e387550fdab836ed7e6dc881de23001b /opt/app/app.py"]
paths:
  description: The same, by path.
  returned: always
  type: dict
  sample: {"/opt/app": {"kind": "directory", "mode": "0755", "owner": "root", "group": "root", "detail": "-"}}
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def path_state(path):
    """{kind, mode, owner, group, detail} of path, or None when it does not exist."""
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


def main():
    module = AnsibleModule(
        argument_spec={"paths": {"type": "list", "elements": "path", "required": True}},
        supports_check_mode=True,
    )
    states, lines = {}, []
    for path in module.params["paths"]:
        state = path_state(path)
        if state is None:
            continue
        try:
            states[path] = state
            lines.append(
                " ".join([state["kind"], state["mode"], state["owner"], state["group"], state["detail"], path])
            )
        except OSError as exc:  # pragma: no cover - a file unreadable by root
            module.fail_json(msg="path_state_info: cannot read %s: %s" % (path, exc))
    module.exit_json(changed=False, lines=lines, paths=states)


if __name__ == "__main__":
    main()
