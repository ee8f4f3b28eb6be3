# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The environment the tests and benchmarks run ansible-playbook / ansible-inventory in.

Only this checkout shapes those runs: the caller's ANSIBLE_* and OCEANID_* variables and any ansible.cfg of the
working directory or home are left out, and the collection is this checkout's, by .cache/collections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass
class PlayResult:
    """One ansible-playbook run: its return code, the per-task results of localhost (ansible.posix.json), the output."""

    rc: int
    results: list[dict]
    stdout: str
    stderr: str

    def __getitem__(self, index: int) -> dict:
        return self.results[index]


def run_local_play(
    workdir: Path,
    name: str,
    tasks: list[dict],
    *,
    check: bool = False,
    diff: bool = True,
    verbosity: int = 0,
    json_output: bool = True,
    env: Mapping[str, str] | None = None,
    count: int = 0,
) -> PlayResult:
    """``tasks`` (complete task dicts) in one play on localhost (local connection, this interpreter), run by
    ansible-playbook in the isolated environment (plus ``env``); with ``json_output`` the ansible.posix.json
    callback's per-task results of localhost come back in order."""
    playbook = workdir / f"play-{count or len(list(workdir.glob('play-*.yml'))) + 1}.yml"
    play = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    playbook.write_text(json.dumps(play, indent=2))
    run_env = isolated_ansible_env(
        workdir / "ansible",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json" if json_output else "ansible.builtin.default",
    )
    run_env.update(env or {})
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        str(playbook),
    ]
    command += ["--check"] if check else []
    command += ["--diff"] if diff else []
    command += ["-" + "v" * verbosity] if verbosity else []
    out = subprocess.run(command, env=run_env, cwd=workdir, capture_output=True, text=True, timeout=600, check=False)
    if not json_output:
        return PlayResult(out.returncode, [], out.stdout, out.stderr)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        raise AssertionError(f"no JSON from ansible-playbook (rc {out.returncode}):\n{out.stdout}\n{out.stderr}")
    results = [task["hosts"]["localhost"] for p in report["plays"] for task in p["tasks"]]
    return PlayResult(out.returncode, results, out.stdout, out.stderr)
