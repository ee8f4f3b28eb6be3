# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the oceanid.fleet.triton_model_ready integration tests: a real tritonserver and ansible-playbook.

One explicit-mode server (session scope) serves most tests; its repository (triton_helpers.SHARED_MODELS)
holds one model per purpose, so that tests do not depend on each other's order.
"""

from __future__ import annotations

import os

import pytest

from tests.integration.triton.triton_helpers import NOT_LOADED_AT_START, SHARED_MODELS, Play, build_shared_repository
from tests.support import tritonserver
from tests.support.ansible_env import isolated_ansible_env


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory) -> dict[str, str]:
    """ansible-playbook's environment: this checkout's collection, no settings from the caller, JSON output."""
    return isolated_ansible_env(tmp_path_factory.mktemp("ansible"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")


@pytest.fixture
def play(ansible_env, tmp_path) -> Play:
    return Play(tmp_path, ansible_env)


@pytest.fixture(scope="session")
def triton(tmp_path_factory):
    """One tritonserver in explicit mode for the session; teardown stops it (and its Python stubs)."""
    if os.geteuid() != 0 or not tritonserver.available():
        pytest.skip("needs root and the tritonserver binary of the nvidia-pytriton wheel")
    root = tmp_path_factory.mktemp("triton")
    repository = root / "models"
    build_shared_repository(repository)
    loaded = [name for name in SHARED_MODELS if name not in NOT_LOADED_AT_START]
    # Triton 2.51 keeps a model whose reload failed "live" at shutdown and waits out --exit-timeout-secs
    # (default 30 s) for it; test_a_failed_reload_keeps_the_old_version_serving does that.
    server = tritonserver.TritonServer(
        repository,
        root / "work",
        model_control_mode="explicit",
        load_models=loaded,
        extra_args=["--exit-timeout-secs=3"],
    )
    server.start()
    yield server
    server.stop()
