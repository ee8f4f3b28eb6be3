# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data_miner filters (plugins/filter/data_miner.py): the engine in module_utils/data_miner.py behind
AnsibleFilterError, ConfigMap files as YAML, and the filters by FQCN in a play, as the data_miner role uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter.data_miner import (
    FilterModule,
    data_miner_app_config,
    data_miner_config_errors,
    data_miner_manifests,
)
from ansible_collections.oceanid.fleet.plugins.module_utils import data_miner
from tests.unit.data_miner.seed import SECRETS, by_path, seed_config, seed_nodes

ROOT = Path(__file__).resolve().parents[4]


def test_the_three_filters_are_exported():
    assert sorted(FilterModule().filters()) == [
        "data_miner_app_config",
        "data_miner_config_errors",
        "data_miner_manifests",
    ]


def test_config_errors_is_the_engines_list():
    assert data_miner_config_errors(seed_config(), seed_nodes()) == []
    config = seed_config()
    config["workers"]["download"]["shedule_on"] = "all"
    assert data_miner_config_errors(config, seed_nodes()) == [
        "workers.download: unknown key 'shedule_on'; did you mean 'schedule_on'?"
    ]


def test_app_config_keeps_empty_strings_and_raises_naming_the_reference():
    context = seed_config()
    merged = data_miner_app_config({"a": "x", "b": 1}, {"a": ""}, {"out": "${storage.seaweedfs_mount}/o"}, context)
    assert merged == {"a": "", "b": 1, "out": "/swdfs_mnt/swshared/o"}
    with pytest.raises(
        AnsibleFilterError, match=r"data_miner_app_config: app_config.out: unknown reference \$\{nope\}"
    ):
        data_miner_app_config({}, {}, {"out": "${nope}"}, context)


def test_manifests_write_configmap_files_as_yaml():
    rendered = by_path(data_miner_manifests(seed_config(), seed_nodes(), SECRETS))
    text = rendered["config/configmap.yaml"]["data"]["config.yaml"]
    assert "blocked_hashtag_patterns: ''" in text.splitlines()
    assert yaml.safe_load(text)["output_dir"] == "/swdfs_mnt/swshared/data_miner_output"
    engine = by_path(data_miner.manifests(seed_config(), seed_nodes(), SECRETS))
    assert set(engine) == set(rendered)


def test_invalid_input_raises_one_filter_error_with_every_problem():
    config = seed_config(persistence="nfs")
    config["workers"]["filter"]["preset"] = "huge"
    with pytest.raises(AnsibleFilterError) as caught:
        data_miner_manifests(config, seed_nodes(), SECRETS)
    assert str(caught.value).splitlines() == [
        "data_miner_manifests: the data_miner configuration is invalid:",
        "workers.filter.preset: 'huge' is not defined in resource_presets (defined: gpu, medium, small)",
        "persistence: 'nfs' is not one of hostPath, pvc",
    ]


def test_through_a_play(tmp_path):
    """The filters by FQCN on Ansible's own (templated) values; what the play writes equals the direct render."""
    out = tmp_path / "rendered.json"
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {
                        "config": seed_config(),
                        "nodes": seed_nodes(),
                        "secrets": SECRETS,
                        "mount": "{{ config.storage.seaweedfs_mount }}",
                    },
                    "tasks": [
                        {
                            "name": "Check",
                            "ansible.builtin.assert": {
                                "that": [
                                    "config | oceanid.fleet.data_miner_config_errors(nodes) == []",
                                    "(config.app_config.defaults | oceanid.fleet.data_miner_app_config("
                                    "config.app_config.run_config, {'out': '${storage.seaweedfs_mount}'}, config))"
                                    ".out == mount",
                                ]
                            },
                        },
                        {
                            "name": "Render",
                            "ansible.builtin.copy": {
                                "content": "{{ config | oceanid.fleet.data_miner_manifests(nodes, secrets) | to_json }}",
                                "dest": str(out),
                                "mode": "0600",
                            },
                            "no_log": True,
                        },
                    ],
                }
            ],
            sort_keys=False,  # the order the config is given in is the order config.yaml keeps
        )
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            *("-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"),
            str(playbook),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == data_miner_manifests(seed_config(), seed_nodes(), SECRETS)
    assert SECRETS["postgres_password"] not in result.stdout + result.stderr
