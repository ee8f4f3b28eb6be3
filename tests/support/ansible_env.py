# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The environment the tests and benchmarks run ansible-playbook / ansible-inventory in.

Only this checkout shapes those runs: the caller's ANSIBLE_* and OCEANID_* variables and any ansible.cfg of the
working directory or home are left out, and the collection is this checkout's, by .cache/collections.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = REPO_ROOT / ".cache" / "collections"


def link_collection() -> Path:
    """.cache/collections/ansible_collections/oceanid/fleet -> this checkout (tools/link-collection), made when missing."""
    if not (COLLECTIONS_PATH / "ansible_collections" / "oceanid" / "fleet").is_dir():
        subprocess.run([str(REPO_ROOT / "tools" / "link-collection")], check=True)
    return COLLECTIONS_PATH


def make_collection_importable() -> Path:
    """Make this checkout importable as ``ansible_collections.oceanid.fleet`` through ansible's collection loader.

    Every test module that imports ``ansible_collections...`` must go through this: a plain ``sys.path`` entry
    lets Python import ``ansible_collections`` as an ordinary namespace package, and a later
    ``init_plugin_loader`` (another conftest in the same session) then fails with "collection metadata was not
    loaded for collection oceanid.fleet".
    """
    path = link_collection()
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
    from ansible.plugins.loader import init_plugin_loader  # pylint: disable=import-outside-toplevel
    from ansible.utils.collection_loader import AnsibleCollectionConfig  # pylint: disable=import-outside-toplevel

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(path)])
    return path


def isolated_ansible_env(directory: Path, base: Mapping[str, str] | None = None, **settings: str) -> dict[str, str]:
    """``base`` (default: this process's environment) without ANSIBLE_*/OCEANID_*, plus an empty ansible.cfg written
    in ``directory``, this checkout's collection, a temp dir under ``directory``, no colour and no retry files.

    ``settings`` add to or override that (ANSIBLE_STDOUT_CALLBACK, ANSIBLE_HOME, ...); with ANSIBLE_COLLECTIONS_PATH
    among them, .cache/collections is neither used nor made.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    env = {
        k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(("ANSIBLE_", "OCEANID_"))
    }
    env.update(
        ANSIBLE_CONFIG=str(directory / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=settings.pop("ANSIBLE_COLLECTIONS_PATH", None) or str(link_collection()),
        ANSIBLE_LOCAL_TEMP=str(directory / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
    )
    env.update(settings)
    return env
