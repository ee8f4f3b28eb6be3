#!/usr/bin/env python3
"""Script inventory: connection variables of the running lab hosts, as `python3 -m lab inventory` prints them.

Ansible reads every source in this directory: hosts.yml gives names and groups, this script the
addresses, user and SSH key of the hosts that `python3 -m lab up` started. A host that is not
running gets no address, so Ansible reports it unreachable instead of reaching a stale one.
"""

import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO_ROOT)

from lab.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["inventory", *sys.argv[1:]]))
