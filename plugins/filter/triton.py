# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of the triton_server role: tritonserver's command line, the models the role loads, where it asks
Triton, and the model files it copies. Each filter's documentation is in plugins/filter/<filter name>.yml."""

from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

RUNTIMES = ("docker", "native")


def _flag(value):
    """A boolean flag's value as tritonserver spells it (true/false)."""
    return str(value).lower()


def triton_server_command(settings):
    """The whole command line of the unit: `docker run ... tritonserver` or the native binary, then Triton's flags."""
    try:
        runtime = settings["runtime"]
        if runtime not in RUNTIMES:
            raise AnsibleFilterError(
                f"triton_server_command: runtime is {runtime!r}; expected one of {', '.join(RUNTIMES)}"
            )
        mode = settings["model_control_mode"]
        args = [
            "--model-repository="
            + str(settings["container_model_repository"] if runtime == "docker" else settings["model_repository"]),
            f"--model-control-mode={mode}",
        ]
        if mode == "poll":
            args.append(f"--repository-poll-secs={settings['repository_poll_secs']}")
        if mode == "explicit":
            args += [f"--load-model={model}" for model in settings.get("load_models") or ()]
        args += [
            f"--strict-readiness={_flag(settings['strict_readiness'])}",
            f"--exit-on-error={_flag(settings['exit_on_error'])}",
            f"--log-verbose={settings['log_verbose']}",
        ]
        if runtime == "native":
            bind = settings["bind_address"]
            args += [
                f"--backend-directory={settings['backend_dir']}",
                f"--http-address={bind}",
                f"--http-port={settings['http_port']}",
                f"--grpc-address={bind}",
                f"--grpc-port={settings['grpc_port']}",
                f"--metrics-address={bind}",
                f"--metrics-port={settings['metrics_port']}",
            ]
        args += list(settings.get("extra_args") or ())
        if runtime == "native":
            return [settings["native_binary"], *args]
        return triton_server_docker_run(settings) + args
    except KeyError as exc:
        raise AnsibleFilterError(f"triton_server_command: the settings have no {exc.args[0]!r}")


def triton_server_docker_run(settings):
    """`docker run` up to the image and `tritonserver`; the container keeps Triton's ports, published as configured."""
    gpus = settings["gpus"]
    if gpus == "all":
        gpus_arg = "all"
    else:
        gpus_arg = '"device=' + ",".join(str(gpu) for gpu in gpus) + '"'
    bind = settings["bind_address"]
    return [
        settings["docker_binary"],
        "run",
        "--rm",
        "--name",
        settings["container_name"],
        "--gpus",
        gpus_arg,
        f"--shm-size={settings['shm_size']}",
        "--ulimit",
        "memlock=-1",
        "--ulimit",
        "stack=67108864",
        "--publish",
        f"{bind}:{settings['http_port']}:8000",
        "--publish",
        f"{bind}:{settings['grpc_port']}:8001",
        "--publish",
        f"{bind}:{settings['metrics_port']}:8002",
        "--volume",
        f"{settings['model_repository']}:{settings['container_model_repository']}:ro",
        *(settings.get("docker_extra_args") or ()),
        settings["image"],
        "tritonserver",
    ]


def triton_server_served_models(models):
    """Names of the deployed models the role loads and waits for: those without `load`, then those with a true `load`.

    Models with `load: false` are the model puller's to load.
    """
    models = list(models or ())
    return [model["name"] for model in models if "load" not in model] + [
        model["name"] for model in models if "load" in model and model["load"]
    ]


def triton_server_local_url(bind_address, http_port):
    """Where the role asks Triton on the host itself: the bind address, or 127.0.0.1 for a wildcard bind."""
    host = "127.0.0.1" if bind_address in ("0.0.0.0", "::") else bind_address
    return f"http://{host}:{http_port}"


def triton_server_model_src(model, models_dir):
    """A model's source directory on the controller: its `src`, else <models_dir>/<name>."""
    if "src" in model:
        return model["src"]
    return f"{models_dir}/{model['name']}"


def triton_server_model_files(models, trees, skip_patterns=()):
    """The entries to deploy: for each model, its community.general.filetree entries but the skipped ones.

    Each result is {model, path, src, state, mode}; trees[i] is the file tree of models[i]. A model with
    `load: false` is the model puller's: its numbered version directories in the source are not deployed (the
    puller delivers versions and removes old ones; deploying them too would undo its work on every run).
    """
    models, trees = list(models or ()), list(trees or ())
    if len(models) != len(trees):
        raise AnsibleFilterError(f"triton_server_model_files: {len(models)} models but {len(trees)} file trees")
    skip = re.compile("|".join(skip_patterns)) if skip_patterns else None
    entries = []
    for model, tree in zip(models, trees, strict=True):
        puller_owned = "load" in model and not model["load"]
        for entry in tree or ():
            if skip is not None and skip.search(entry["path"]):
                continue
            if puller_owned and entry["path"].split("/", 1)[0].isdigit():
                continue
            entries.append(
                {
                    "model": model["name"],
                    "path": entry["path"],
                    "src": entry.get("src", ""),
                    "state": entry["state"],
                    "mode": entry["mode"],
                }
            )
    return entries


def triton_server_templated_models(models, trees):
    """The models whose source has a config.pbtxt.j2 at its top (rendered per host), in the order of models."""
    models, trees = list(models or ()), list(trees or ())
    if len(models) != len(trees):
        raise AnsibleFilterError(f"triton_server_templated_models: {len(models)} models but {len(trees)} file trees")
    return [
        model
        for model, tree in zip(models, trees, strict=True)
        if any(entry["path"] == "config.pbtxt.j2" and entry["state"] != "directory" for entry in tree or ())
    ]


def triton_server_model_dirs(models, entries):
    """The directories to create in the repository: each model's, then each directory entry as <model>/<path>."""
    return [model["name"] for model in models or ()] + [
        f"{entry['model']}/{entry['path']}" for entry in entries or () if entry["state"] == "directory"
    ]


class FilterModule:
    """The triton_server role's builders."""

    def filters(self):
        return {
            "triton_server_command": triton_server_command,
            "triton_server_served_models": triton_server_served_models,
            "triton_server_local_url": triton_server_local_url,
            "triton_server_model_src": triton_server_model_src,
            "triton_server_model_files": triton_server_model_files,
            "triton_server_templated_models": triton_server_templated_models,
            "triton_server_model_dirs": triton_server_model_dirs,
        }
