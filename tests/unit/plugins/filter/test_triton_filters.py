# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The triton_server role's filters: the command line, the models it loads, where it asks, the model files."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.oceanid.fleet.plugins.filter import triton
from ansible_collections.oceanid.fleet.plugins.filter.triton import FilterModule

SETTINGS = {
    "runtime": "native",
    "model_repository": "/opt/triton/models",
    "container_model_repository": "/models",
    "model_control_mode": "explicit",
    "repository_poll_secs": 15,
    "load_models": [],
    "strict_readiness": True,
    "exit_on_error": False,
    "log_verbose": 0,
    "backend_dir": "/opt/triton/backends",
    "bind_address": "0.0.0.0",
    "http_port": 8000,
    "grpc_port": 8001,
    "metrics_port": 8002,
    "extra_args": [],
    "native_binary": "/opt/triton/venv/bin/tritonserver",
    "docker_binary": "/usr/bin/docker",
    "container_name": "tritonserver",
    "gpus": "all",
    "shm_size": "1g",
    "docker_extra_args": [],
    "image": "nvcr.io/nvidia/tritonserver:24.10-py3",
}
FLAGS = ["--strict-readiness=true", "--exit-on-error=false", "--log-verbose=0"]
NATIVE_ADDRESSES = [
    "--backend-directory=/opt/triton/backends",
    "--http-address=0.0.0.0",
    "--http-port=8000",
    "--grpc-address=0.0.0.0",
    "--grpc-port=8001",
    "--metrics-address=0.0.0.0",
    "--metrics-port=8002",
]


def test_every_filter_is_registered():
    assert set(FilterModule().filters()) == {
        "triton_server_command",
        "triton_server_served_models",
        "triton_server_local_url",
        "triton_server_model_src",
        "triton_server_model_files",
        "triton_server_templated_models",
        "triton_server_model_dirs",
    }


@pytest.mark.parametrize(
    ("overrides", "control_flags"),
    [
        ({}, ["--model-control-mode=explicit"]),
        ({"load_models": ["a", "b"]}, ["--model-control-mode=explicit", "--load-model=a", "--load-model=b"]),
        (
            {"model_control_mode": "poll", "load_models": ["a"]},
            ["--model-control-mode=poll", "--repository-poll-secs=15"],
        ),
        ({"model_control_mode": "none"}, ["--model-control-mode=none"]),
    ],
    ids=["explicit", "explicit-load", "poll", "none"],
)
def test_native_command_line(overrides, control_flags):
    command = triton.triton_server_command({**SETTINGS, **overrides, "extra_args": ["--x=1"]})
    assert command == [
        "/opt/triton/venv/bin/tritonserver",
        "--model-repository=/opt/triton/models",
        *control_flags,
        *FLAGS,
        *NATIVE_ADDRESSES,
        "--x=1",
    ]


@pytest.mark.parametrize(("gpus", "gpus_arg"), [("all", "all"), ([0, 1], '"device=0,1"'), ([2], '"device=2"')])
def test_docker_command_line(gpus, gpus_arg):
    command = triton.triton_server_command(
        {
            **SETTINGS,
            "runtime": "docker",
            "gpus": gpus,
            "bind_address": "127.0.0.1",
            "docker_extra_args": ["--env=A=b c"],
        }
    )
    assert command == [
        "/usr/bin/docker",
        "run",
        "--rm",
        "--name",
        "tritonserver",
        "--gpus",
        gpus_arg,
        "--shm-size=1g",
        "--ulimit",
        "memlock=-1",
        "--ulimit",
        "stack=67108864",
        "--publish",
        "127.0.0.1:8000:8000",
        "--publish",
        "127.0.0.1:8001:8001",
        "--publish",
        "127.0.0.1:8002:8002",
        "--volume",
        "/opt/triton/models:/models:ro",
        "--env=A=b c",
        "nvcr.io/nvidia/tritonserver:24.10-py3",
        "tritonserver",
        "--model-repository=/models",
        "--model-control-mode=explicit",
        *FLAGS,
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({**SETTINGS, "runtime": "podman"}, "runtime is 'podman'"),
        ({"runtime": "native"}, "have no 'model_control_mode'"),
    ],
)
def test_command_rejects_bad_settings(settings, message):
    with pytest.raises(AnsibleFilterError, match=message):
        triton.triton_server_command(settings)


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ([{"name": "a"}, {"name": "b", "load": False}, {"name": "c", "load": True}, {"name": "d"}], ["a", "d", "c"]),
        ([{"name": "a", "load": None}], []),
        ([], []),
    ],
)
def test_served_models(models, expected):
    assert triton.triton_server_served_models(models) == expected


@pytest.mark.parametrize(
    ("bind", "url"),
    [("0.0.0.0", "http://127.0.0.1:8000"), ("::", "http://127.0.0.1:8000"), ("10.0.0.5", "http://10.0.0.5:8000")],
)
def test_local_url(bind, url):
    assert triton.triton_server_local_url(bind, 8000) == url


@pytest.mark.parametrize(
    ("model", "src"),
    [({"name": "tiny"}, "/srv/models/tiny"), ({"name": "tiny", "src": "/elsewhere/t"}, "/elsewhere/t")],
)
def test_model_src(model, src):
    assert triton.triton_server_model_src(model, "/srv/models") == src


def entry(path, state="file", mode="0644"):
    result = {"root": "/r", "path": path, "state": state, "mode": mode, "size": 1}
    if state != "directory":
        result["src"] = "/r/" + path
    return result


SKIP = [
    r"(^|/)config\.pbtxt\.j2$",
    r"(^|/)README(\.md)?$",
    r"(^|/)make_[^/]*\.py$",
    r"(^|/)__pycache__(/|$)",
    r"\.pyc$",
]
MODELS = [{"name": "plain"}, {"name": "templated", "gpus": [0]}]
TREES = [
    [entry("config.pbtxt"), entry("1", "directory"), entry("1/model.onnx"), entry("README.md")],
    [
        entry("config.pbtxt.j2"),
        entry("1", "directory"),
        entry("1/model.py", mode="0755"),
        entry("1/__pycache__", "directory"),
        entry("1/__pycache__/model.cpython-311.pyc"),
        entry("make_model.py"),
    ],
]


def test_model_files_skip_templates_docs_and_build_helpers():
    assert triton.triton_server_model_files(MODELS, TREES, SKIP) == [
        {"model": "plain", "path": "config.pbtxt", "src": "/r/config.pbtxt", "state": "file", "mode": "0644"},
        {"model": "plain", "path": "1", "src": "", "state": "directory", "mode": "0644"},
        {"model": "plain", "path": "1/model.onnx", "src": "/r/1/model.onnx", "state": "file", "mode": "0644"},
        {"model": "templated", "path": "1", "src": "", "state": "directory", "mode": "0644"},
        {"model": "templated", "path": "1/model.py", "src": "/r/1/model.py", "state": "file", "mode": "0755"},
    ]


def test_model_files_of_a_puller_model_leave_out_its_versions():
    puller_models = [{"name": "plain", "load": False}, {"name": "templated", "gpus": [0]}]
    assert triton.triton_server_model_files(puller_models, TREES, SKIP) == [
        {"model": "plain", "path": "config.pbtxt", "src": "/r/config.pbtxt", "state": "file", "mode": "0644"},
        {"model": "templated", "path": "1", "src": "", "state": "directory", "mode": "0644"},
        {"model": "templated", "path": "1/model.py", "src": "/r/1/model.py", "state": "file", "mode": "0755"},
    ]


def test_templated_models_and_model_dirs():
    assert triton.triton_server_templated_models(MODELS, TREES) == [{"name": "templated", "gpus": [0]}]
    entries = triton.triton_server_model_files(MODELS, TREES, SKIP)
    assert triton.triton_server_model_dirs(MODELS, entries) == ["plain", "templated", "plain/1", "templated/1"]


@pytest.mark.parametrize("function", [triton.triton_server_model_files, triton.triton_server_templated_models])
def test_trees_must_match_models(function):
    with pytest.raises(AnsibleFilterError, match="2 models but 1 file trees"):
        function(MODELS, TREES[:1])
