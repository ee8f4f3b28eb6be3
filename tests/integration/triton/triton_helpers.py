# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the triton_model_ready integration tests: test models, and running the module through ansible-playbook."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import tritonserver

MODULE = "oceanid.fleet.triton_model_ready"

CONFIG = """\
backend: "{backend}"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: {dtype} dims: [ -1 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
{extra}
"""

MODEL_PY = """\
import numpy as np
import triton_python_backend_utils as pb_utils

ADD = {add}


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", (x + ADD).astype(np.float32))]))
        return responses
"""

BROKEN_PY = "import oceanid_no_such_module  # the load fails here\n"


def write_model(
    repository: Path,
    name: str,
    versions=(1,),
    add: float | None = None,
    backend: str = "python",
    dtype: str = "TYPE_FP32",
    extra: str = "",
    code: str | None = None,
) -> Path:
    """A Python-backend model directory; version N adds ``add`` (default: N) to its input."""
    model = repository / name
    for version in versions:
        (model / str(version)).mkdir(parents=True, exist_ok=True)
        (model / str(version) / "model.py").write_text(
            code if code is not None else MODEL_PY.format(add=float(version if add is None else add))
        )
    (model / "config.pbtxt").write_text(CONFIG.format(backend=backend, dtype=dtype, extra=extra))
    return model


def infer(server: tritonserver.TritonServer, model: str, value: float = 1.0, version: str = "") -> float:
    status, body = server.infer(
        model, [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [value]}], version=version
    )
    assert status == 200, body
    return body["outputs"][0]["data"][0]


def entries(server: tritonserver.TritonServer, name: str) -> list[dict]:
    return [entry for entry in server.index() if entry["name"] == name]


# -- running the module the way users do -------------------------------------------------------------------


@dataclass
class PlayResult:
    rc: int
    results: list[dict]  # one per task, the host's result
    stdout: str
    stderr: str
    seconds: float

    def __getitem__(self, index: int) -> dict:
        return self.results[index]


class Play:
    """A playbook of triton_model_ready tasks on localhost, run with ansible-playbook; each task ignore_errors."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = env
        self.count = 0

    def command(self, tasks: list[dict], check: bool = False, diff: bool = False) -> list[str]:
        self.count += 1
        playbook = self.workdir / ("play-%d.yml" % self.count)
        play = [
            {
                "name": "triton_model_ready",
                "hosts": "localhost",
                "gather_facts": False,
                "tasks": [
                    {"name": "step %d" % number, MODULE: args, "ignore_errors": True}
                    for number, args in enumerate(tasks)
                ],
            }
        ]
        playbook.write_text(json.dumps(play, indent=2))  # JSON is YAML
        command = [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter=%s" % sys.executable,
            str(playbook),
        ]
        return command + (["--check"] if check else []) + (["--diff"] if diff else [])

    def start(self, tasks: list[dict], check: bool = False, diff: bool = False) -> RunningPlay:
        return RunningPlay(
            subprocess.Popen(
                self.command(tasks, check, diff),
                env=self.env,
                cwd=self.workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )

    def __call__(self, tasks: list[dict], check: bool = False, diff: bool = False) -> PlayResult:
        return self.start(tasks, check, diff).wait()


class RunningPlay:
    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.started = time.monotonic()

    def wait(self, timeout: float = 300) -> PlayResult:
        stdout, stderr = self.process.communicate(timeout=timeout)
        seconds = time.monotonic() - self.started
        try:
            report = json.loads(stdout)
        except ValueError:
            raise AssertionError(
                "ansible-playbook printed no JSON (rc %s):\n%s\n%s"
                % (self.process.returncode, stdout[-3000:], stderr[-3000:])
            ) from None
        results = [task["hosts"]["localhost"] for play in report["plays"] for task in play["tasks"]]
        return PlayResult(self.process.returncode, results, stdout, stderr, seconds)


# -- the shared server -----------------------------------------------------------------------------------------

# name -> what it is for; loaded at start unless listed in NOT_LOADED_AT_START
SHARED_MODELS = {
    "add_one": "a READY model (check mode, ready)",
    "two_versions": "version_policy all, versions 1 and 2",
    "broken_code": "model.py that cannot import: UNAVAILABLE with Triton's reason",
    "broken_backend": "config.pbtxt naming a backend that does not exist: UNAVAILABLE with Triton's reason",
    "unparseable": "config.pbtxt Triton cannot parse: only a name in the index; load fails",
    "toggle": "explicit load/unload",
    "lazy": "never loaded (check mode)",
    "reload_ok": "reload after a file change",
    "reload_bad": "reload that fails: the old version keeps serving",
}
NOT_LOADED_AT_START = ("unparseable", "toggle", "lazy")


def build_shared_repository(repository: Path) -> None:
    write_model(repository, "add_one", add=1)
    write_model(repository, "two_versions", versions=(1, 2), extra="version_policy: { all: {} }")
    write_model(repository, "broken_code", code=BROKEN_PY)
    write_model(repository, "broken_backend", backend="oceanid_no_such_backend")
    write_model(repository, "unparseable", dtype="TYPE_FLOAT32")  # not a DataType name
    write_model(repository, "toggle", add=1)
    write_model(repository, "lazy", add=1)
    write_model(repository, "reload_ok", add=1)
    write_model(repository, "reload_bad", add=1)
