# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check a k3s config file on the node before it replaces the serving one (the ``validate:`` of the k3s role).

    k3s_config_check.py server|agent FILE

The role installs this script next to copies of the collection's module_utils k3s_config.py and k3s_flags.py
(the same checks its preflight ran on the controller). Exit 0 when FILE is in the role's format and every key
and value is one ``k3s <command>`` accepts; else exit 1 with one line per problem on stderr.
"""

import os
import sys

# k3s_config.py and k3s_flags.py are found next to this script.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import k3s_config
import k3s_flags


def main(argv):
    if len(argv) != 2 or argv[0] not in k3s_config.COMMANDS:
        sys.stderr.write("usage: k3s_config_check.py server|agent FILE\n")
        return 2
    command, path = argv
    try:
        with open(path, encoding="utf-8") as handle:
            config = k3s_config.parse(handle.read())
    except (OSError, UnicodeDecodeError, k3s_config.ConfigFormatError) as exc:
        sys.stderr.write("%s: %s\n" % (path, exc))
        return 1
    errors = k3s_config.config_errors(config, command, k3s_flags.FLAGS, k3s_flags.CHOICES, where=path)
    for error in errors:
        sys.stderr.write(error + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
