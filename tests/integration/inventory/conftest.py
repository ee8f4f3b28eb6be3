# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the fleet inventory and GPU playbook tests: moto's EC2 behind the counting, fault-injecting proxy
(tests/support/moto_ec2.py) and runners for ansible-inventory and ansible-playbook with this checkout's collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.inventory.fleet_helpers import REGIONS, VENV_BIN, Run, run
from tests.support.ansible_env import isolated_ansible_env
from tests.support.moto_ec2 import MotoEC2, aws_environment

pytest.importorskip("moto", reason="moto is in requirements-dev.txt (make venv)")
pytest.importorskip("boto3", reason="boto3 is in requirements-dev.txt (make venv)")


@pytest.fixture(scope="session")
def moto(tmp_path_factory) -> MotoEC2:
    """One moto process per region (each region is its own endpoint, as in AWS) behind one proxy URL."""
    logs = tmp_path_factory.mktemp("moto")
    fleet = MotoEC2(REGIONS, log_dir=logs).start()
    yield fleet
    fleet.stop()


@pytest.fixture(scope="session")
def ansible_env(tmp_path_factory, moto) -> dict[str, str]:
    """The environment of ansible-inventory/ansible-playbook: this checkout, no caller settings, fake AWS keys."""
    directory = tmp_path_factory.mktemp("ansible")
    return isolated_ansible_env(
        directory, aws_environment(), ANSIBLE_HOME=str(directory / "home"), ANSIBLE_DEPRECATION_WARNINGS="0"
    )


@pytest.fixture
def inventory(ansible_env):
    """Run ``ansible-inventory -i <path> --list`` (plus arguments); returns a Run."""

    def _inventory(path: Path, *args: str, env: dict[str, str] | None = None) -> Run:
        return run(
            [str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list", *args], {**ansible_env, **(env or {})}
        )

    return _inventory


@pytest.fixture
def write_config(tmp_path, moto):
    """Write a fleet.yml (a dict; every ec2 source gets the proxy as endpoint_url) and return its path."""

    def _write(config: dict, name: str = "fleet.yml") -> Path:
        config = json.loads(json.dumps(config))
        for source in config.get("ec2", []):
            source.setdefault("endpoint_url", moto.url)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return _write
