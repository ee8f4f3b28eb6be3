# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for tests against the Cloudflare emulator (tests/support/cloudflare_emulator.py, never the real API).

- ``emulator``: a fresh CloudflareEmulator per test (one account, zone ``oceanid.example``), stopped afterwards.
- ``cf_play``: runs tasks on localhost with ansible-playbook, the environment carrying the emulator's proxy_env
  (HTTPS_PROXY + SSL_CERT_FILE), so that modules with the fixed endpoint https://api.cloudflare.com/client/v4
  (community.general.cloudflare_dns, and ours by default) reach the emulator over verified TLS.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ansible_env import PlayResult, make_collection_importable, run_local_play
from tests.support.cloudflare_emulator import CloudflareEmulator

COLLECTIONS_PATH = make_collection_importable()


@pytest.fixture
def emulator():
    emu = CloudflareEmulator().start()
    yield emu
    emu.stop()


class CfPlay:
    """``cf_play(tasks, check=False, diff=True, verbosity=0, json_output=True, env=None) -> PlayResult``.

    ``tasks``: (module, args) pairs (a module name without a dot means ``oceanid.fleet.<name>``; each task gets
    ignore_errors so that every result comes back) or complete task dicts. Credentials are not added: pass
    ``api_token=emulator.api_token`` (or api_key/api_email) in the args, or CLOUDFLARE_* in ``env``.
    """

    def __init__(self, workdir: Path, emulator: CloudflareEmulator):
        self.workdir = workdir
        self.emulator = emulator
        self.env = emulator.proxy_env(workdir / "emulator-ca")
        self.count = 0

    def __call__(
        self,
        tasks: list,
        check: bool = False,
        diff: bool = True,
        verbosity: int = 0,
        json_output: bool = True,
        env: dict[str, str] | None = None,
    ) -> PlayResult:
        self.count += 1
        task_dicts = []
        for n, task in enumerate(tasks):
            if isinstance(task, dict):
                task_dicts.append(task)
                continue
            module, args = task
            module = module if "." in module else f"oceanid.fleet.{module}"
            task_dicts.append({"name": f"step {n}", module: args, "ignore_errors": True})
        return run_local_play(
            self.workdir,
            "cloudflare emulator",
            task_dicts,
            check=check,
            diff=diff,
            verbosity=verbosity,
            json_output=json_output,
            env=dict(self.env, **(env or {})),
            count=self.count,
        )


@pytest.fixture
def cf_play(emulator, tmp_path) -> CfPlay:
    return CfPlay(tmp_path, emulator)
