# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How soon after a Triton model becomes READY do the waiters notice?

Waiters, started together while the model is not loaded, in each round:

* ``module``: oceanid.fleet.triton_model_ready (state=ready, default interval 0.1 s) run directly with
  ``python -m ansible_collections.oceanid.fleet.plugins.modules.triton_model_ready '<args JSON>'``:
  the module's own code and process, without ansible's controller around it;
* ``ansible``: the same module through ``ansible localhost -m oceanid.fleet.triton_model_ready`` (what a
  playbook task sees, controller overhead included); skip it with ``--no-ansible``;
* ``curl``: a shell loop ``until curl -sf <url>/v2/models/<m>/ready; do sleep 1; done``, the kind of
  smoke check this replaces.

After a settling time with a random part (so that the curl loop's one-second phase is not the same in
every round), the model is loaded with ``POST /v2/repository/models/<m>/load``; that request returns when
the model is READY, and that moment is the reference. Each waiter's latency is the time from it to the waiter's
exit. The model is unloaded between rounds. A real tritonserver (explicit mode) from the nvidia-pytriton
wheel serves a small Python-backend model. Needs root (see tests/support/tritonserver.py).

Run from the repository root:  .venv/bin/python benchmarks/triton_ready/run.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.ansible_env import COLLECTIONS_PATH, isolated_ansible_env, link_collection  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.tritonserver import TritonServer  # noqa: E402  pylint: disable=wrong-import-position

MODEL = "bench_add_one"
CONFIG = """\
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""
MODEL_PY = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor(
            "OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() + 1)]) for r in requests]
"""


def write_repository(root: Path) -> Path:
    model = root / "models" / MODEL
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG)
    (model / "1" / "model.py").write_text(MODEL_PY)
    return root / "models"


def environment(tmp: Path) -> dict[str, str]:
    return isolated_ansible_env(tmp, PYTHONPATH=str(COLLECTIONS_PATH))


def waiter_commands(url: str, timeout: float, with_ansible: bool) -> dict[str, list[str]]:
    args = {"url": url, "models": [MODEL], "state": "ready", "timeout": timeout}
    bin_dir = Path(sys.executable).parent
    commands = {
        "module": [
            sys.executable,
            "-m",
            "ansible_collections.oceanid.fleet.plugins.modules.triton_model_ready",
            json.dumps({"ANSIBLE_MODULE_ARGS": args}),
        ],
        "curl": ["bash", "-c", "until curl -sf %s/v2/models/%s/ready; do sleep 1; done" % (url, MODEL)],
    }
    if with_ansible:
        commands["ansible"] = [
            str(bin_dir / "ansible"),
            "localhost",
            "-c",
            "local",
            "-i",
            "localhost,",
            "-e",
            "ansible_python_interpreter=%s" % sys.executable,
            "-m",
            "oceanid.fleet.triton_model_ready",
            "-a",
            json.dumps(args),
        ]
    return commands


def one_round(server: TritonServer, commands: dict[str, list[str]], env: dict[str, str], settle: float) -> dict:
    exits: dict[str, float] = {}
    outputs: dict[str, tuple[int, str]] = {}
    threads = []

    def run(name: str, command: list[str]) -> None:
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        out, _err = proc.communicate()
        exits[name] = time.monotonic()
        outputs[name] = (proc.returncode, out)

    for name, command in commands.items():
        thread = threading.Thread(target=run, args=(name, command))
        thread.start()
        threads.append(thread)
    time.sleep(settle)  # every waiter is polling by now (ansible needs about a second to start the module)
    if exits:
        raise RuntimeError("a waiter returned before the model was loaded: %s" % outputs)
    started = time.monotonic()
    status, body = server.request("POST", "/v2/repository/models/%s/load" % MODEL, {})
    ready_at = time.monotonic()
    if status != 200:
        raise RuntimeError("load failed: %s %s" % (status, body))
    for thread in threads:
        thread.join(120)
    for name, (returncode, out) in outputs.items():
        if returncode != 0:
            raise RuntimeError("waiter %s failed (%s): %s" % (name, returncode, out[-2000:]))
    result = {name: exits[name] - ready_at for name in commands}
    result["load_s"] = ready_at - started
    result["module_waited"] = json.loads(outputs["module"][1])["waited"]
    return result


def unload(server: TritonServer) -> None:
    server.request("POST", "/v2/repository/models/%s/unload" % MODEL, {})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = [e.get("state") for e in server.index() if e["name"] == MODEL]
        if states and all(state not in ("READY", "LOADING", "UNLOADING") for state in states):
            return
        time.sleep(0.05)
    raise RuntimeError("the model did not unload")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds between starting the waiters and the load, plus a random 0-1 s",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random part of the settling time")
    parser.add_argument("--no-ansible", action="store_true", help="leave out the waiter through ansible")
    options = parser.parse_args()
    link_collection()

    command = [os.path.relpath(sys.executable, REPO_ROOT), os.path.relpath(__file__, REPO_ROOT), *sys.argv[1:]]
    print("command: %s" % " ".join(shlex.quote(a) for a in command))
    print("machine: %d CPUs, kernel %s" % (os.cpu_count() or 0, os.uname().release))
    with tempfile.TemporaryDirectory(prefix="oceanid-triton-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = TritonServer(write_repository(tmp), tmp / "work", model_control_mode="explicit")
        server.start()
        try:
            env = environment(tmp)
            commands = waiter_commands(server.url, 120.0, not options.no_ansible)
            for name, command in commands.items():
                print("waiter %-7s %s" % (name, " ".join(shlex.quote(a) for a in command)))
            rounds = []
            jitter = random.Random(options.seed)
            for number in range(1, options.rounds + 1):
                result = one_round(server, commands, env, options.settle + jitter.uniform(0.0, 1.0))
                rounds.append(result)
                print(
                    "round %d: load took %.2f s; after READY: %s; module waited %.2f s"
                    % (
                        number,
                        result["load_s"],
                        ", ".join("%s %.3f s" % (name, result[name]) for name in commands),
                        result["module_waited"],
                    )
                )
                unload(server)
        finally:
            server.stop()
    medians = {name: statistics.median(r[name] for r in rounds) for name in commands}
    print(
        "median latency after READY over %d rounds: %s"
        % (len(rounds), ", ".join("%s %.3f s" % (name, value) for name, value in medians.items()))
    )
    print("max latency: %s" % ", ".join("%s %.3f s" % (name, max(r[name] for r in rounds)) for name in commands))
    print("curl loop / module: %.1fx" % (medians["curl"] / medians["module"]))
    if "ansible" in medians:
        print("curl loop / module through ansible: %.1fx" % (medians["curl"] / medians["ansible"]))
    print("target (module < 0.25 s): %s" % ("met" if medians["module"] < 0.25 else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
