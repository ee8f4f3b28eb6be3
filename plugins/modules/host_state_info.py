#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: host_state_info
short_description: What a host has now (paths, systemd units, packages, virtualenv distributions, users, groups) in one module run
version_added: 0.1.0
description:
  - Reads, without changing anything, the state of every path, systemd unit, Debian package, virtualenv
    distribution, user and group given, in one module run instead of one M(ansible.builtin.stat),
    M(ansible.builtin.systemd_service), M(ansible.builtin.apt), M(ansible.builtin.pip) or M(ansible.builtin.user)
    run each.
  - Roles use it to hand their modules only the items that are not already exactly as those modules would leave
    them; on an unchanged host that is most of the cost of a run (a module run costs 0.2-0.5 s whatever it does).
    Every item that differs still goes to its module, so check mode, diff and C(changed) stay the module's.
  - A path, package, distribution, user or group that does not exist is left out of its result.
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
    details: Units need systemd (C(systemctl show)), packages need C(dpkg-query).
options:
  paths:
    description: Paths to look at (a final symlink is not followed).
    type: list
    elements: path
    default: []
  units:
    description: systemd units; a name without a suffix is a C(.service).
    type: list
    elements: str
    default: []
  packages:
    description: Debian packages.
    type: list
    elements: str
    default: []
  virtualenvs:
    description:
      - Virtualenv directories whose installed distributions to list (read from their C(.dist-info) metadata;
        the virtualenv's Python is not started).
    type: list
    elements: path
    default: []
  users:
    description: Local users.
    type: list
    elements: str
    default: []
  groups:
    description: Local groups.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Look at what the program needs
  oceanid.fleet.host_state_info:
    paths: [/opt/app, /opt/app/app.py]
    units: [app]
    packages: [python3-venv]
    virtualenvs: [/opt/app/venv]
    users: [app]
  register: app_state

- name: Install the program unless it is already there with these bytes, mode and owner
  ansible.builtin.copy:
    src: app.py
    dest: /opt/app/app.py
    mode: "0644"
  when: ('file 0644 root root ' ~ (lookup('file', 'app.py') | hash('sha1')) ~ ' /opt/app/app.py') not in app_state.lines

- name: Install the pinned packages unless they are there
  ansible.builtin.pip:
    name: requests==2.32.3
    virtualenv: /opt/app/venv
  when: app_state.virtualenvs['/opt/app/venv'].requests | default('') != '2.32.3'
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
units:
  description:
    - Every unit asked for, by the name given, with systemd's C(load) (C(loaded), C(not-found)), C(active)
      (C(active), C(inactive), C(failed)...), C(sub) and C(enabled) (the unit file state, empty when not found).
  returned: always
  type: dict
  sample: {"app": {"load": "loaded", "active": "active", "sub": "running", "enabled": "enabled"}}
packages:
  description: The installed packages among those asked for, with their versions.
  returned: always
  type: dict
  sample: {"python3-venv": "3.11.2-1+b1"}
virtualenvs:
  description:
    - Per virtualenv asked for, its distributions by canonical name (lower case, runs of C(-_.) as one C(-)) with
      their versions; an empty mapping when there is no virtualenv there.
  returned: always
  type: dict
  sample: {"/opt/app/venv": {"requests": "2.32.3", "label-studio": "1.22.0"}}
users:
  description: The existing users among those asked for.
  returned: always
  type: dict
  sample: {"app": {"uid": 998, "gid": 998, "group": "app", "home": "/opt/app", "shell": "/usr/sbin/nologin"}}
groups:
  description: The existing groups among those asked for.
  returned: always
  type: dict
  sample: {"app": {"gid": 998, "members": []}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.host_state import (
    group_state,
    package_versions,
    path_line,
    path_state,
    python_distributions,
    unit_states,
    user_state,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "virtualenvs": {"type": "list", "elements": "path", "default": []},
            "users": {"type": "list", "elements": "str", "default": []},
            "groups": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    states, lines = {}, []
    for path in params["paths"]:
        try:
            state = path_state(path)
        except OSError as exc:  # pragma: no cover - a file unreadable by root
            module.fail_json(msg="host_state_info: cannot read %s: %s" % (path, exc))
        if state is not None:
            states[path] = state
            lines.append(path_line(path, state))

    def run_command(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    try:
        units = unit_states(run_command, params["units"])
        packages = package_versions(run_command, params["packages"])
    except RuntimeError as exc:
        module.fail_json(msg="host_state_info: %s" % exc)
    users = {name: user_state(name) for name in params["users"]}
    groups = {name: group_state(name) for name in params["groups"]}
    module.exit_json(
        changed=False,
        lines=lines,
        paths=states,
        units=units,
        packages=packages,
        virtualenvs={venv: python_distributions(venv) for venv in params["virtualenvs"]},
        users={name: state for name, state in users.items() if state is not None},
        groups={name: state for name, state in groups.items() if state is not None},
    )


if __name__ == "__main__":
    main()
