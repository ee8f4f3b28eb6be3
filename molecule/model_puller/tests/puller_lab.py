# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What molecule/model_puller's tests share: the scenario's paths, publishing a version from the controller (the
s3_model_ingest engine), Triton through tritonclient, the puller's status file and journal, and converge.yml run
again through ansible-playbook with other inputs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import tritonclient.http as triton_http

SCENARIO = Path(__file__).resolve().parents[1]
# The collection as Python packages (tools/link-collection), for the ingest engine s3_model_ingest runs.
sys.path.insert(0, str(SCENARIO.parents[1] / ".cache" / "collections"))
from ansible_collections.oceanid.fleet.plugins.module_utils import s3_client, s3_model_upload  # noqa: E402

MODEL = "puller_demo"
KEY = "puller-demo"
REPO = f"/opt/triton/models/{MODEL}"
STATUS = "/var/lib/oceanid/model-puller/status.json"
SERVICE = "model-puller.service"
TIMER = "model-puller.timer"
PUBLISHED_BY_PREPARE = 1
# A runtime drop-in that leaves the timer one tick a day away (an empty OnActiveSec= resets every On*Sec= of the unit);
# in /run, so the role's unit files stay as converge wrote them.
SILENCE_DROPIN = "/run/systemd/system/model-puller.timer.d/50-molecule-silence.conf"


def wait_for(what: str, probe, timeout: float = 90, interval: float = 0.5):
    """probe() until it returns something true; fail naming `what` and the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not after {timeout:.0f} s (last: {value!r})"
        time.sleep(interval)


# --- publishing, the way a training job does (s3_model_ingest's engine) ----------------------------------------------
def write_version(directory: Path, factor: str, blob_bytes: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.py").write_bytes((SCENARIO / "files" / "model.py").read_bytes())
    (directory / "factor.txt").write_text(factor, encoding="utf-8")
    if blob_bytes:
        with open(directory / "blob.bin", "wb") as handle:
            for _chunk in range(blob_bytes // (1 << 20)):
                handle.write(os.urandom(1 << 20))
    return directory


def publish(lab_vars: dict, s3_address: str, src: Path, model_key: str) -> dict:
    endpoint = s3_client.S3Endpoint(
        endpoint_url=f"http://{s3_address}:8333",
        access_key=lab_vars["pm_s3_access_key"],
        secret_key=lab_vars["pm_s3_secret_key"],
    )
    return s3_model_upload.ingest(s3_client.S3Client(endpoint), lab_vars["pm_bucket"], str(src), model_key=model_key)


# --- Triton, from the controller --------------------------------------------------------------------------------------
def infer(client: triton_http.InferenceServerClient, value: float) -> tuple:
    """(OUTPUT0's first value, the version that answered)."""
    tensor = triton_http.InferInput("INPUT0", [1], "FP32")
    tensor.set_data_from_numpy(np.array([value], dtype=np.float32))
    result = client.infer(MODEL, [tensor])
    return float(result.as_numpy("OUTPUT0")[0]), result.get_response()["model_version"]


class InferenceLoop(threading.Thread):
    """One inference every 20 ms (its own client) until stopped: how many were sent, which failed, the outputs seen."""

    def __init__(self, url: str, max_seconds: float = 300):
        super().__init__(daemon=True)
        self.url, self.max_seconds = url, max_seconds
        self.stop_event = threading.Event()
        self.sent, self.failures, self.outputs = 0, [], []

    def run(self):
        client = triton_http.InferenceServerClient(url=self.url, network_timeout=10.0)
        deadline = time.monotonic() + self.max_seconds
        while not self.stop_event.is_set() and time.monotonic() < deadline:
            self.sent += 1
            try:
                value = infer(client, 1.0)[0]
                if not self.outputs or self.outputs[-1] != value:
                    self.outputs.append(value)
            except Exception as error:  # every failed inference, whatever its kind, is what this loop reports
                self.failures.append({"at": time.time(), "error": str(error)[:300]})
            time.sleep(0.02)
        client.close()

    def report(self) -> dict:
        self.stop_event.set()
        self.join(timeout=30)
        return {"sent": self.sent, "failures": self.failures, "outputs": self.outputs}


# --- the puller on the GPU host -----------------------------------------------------------------------------------
def status(host) -> dict:
    return json.loads(host.file(STATUS).content_string)


def record(host) -> dict:
    return status(host)["models"][MODEL]


def journal(host) -> str:
    return host.check_output("journalctl --unit=%s --output=cat --no-pager", SERVICE)


def passes(host) -> dict:
    """Invocation id -> (first line's realtime in µs, the lines), in order: one entry per pass the service ran."""
    runs: dict = {}
    raw = host.check_output("journalctl --unit=%s --output=json --no-pager", SERVICE)
    for line in raw.splitlines():
        entry = json.loads(line)
        invocation = entry.get("_SYSTEMD_INVOCATION_ID")
        if invocation and isinstance(entry.get("MESSAGE"), str):
            runs.setdefault(invocation, (int(entry["__REALTIME_TIMESTAMP"]), []))[1].append(entry["MESSAGE"])
    return runs


def versions_on_disk(host) -> list:
    return sorted(host.check_output("find %s -mindepth 1 -maxdepth 1 -type d -printf '%%f\\n'", REPO).split())


def wait_idle(host) -> None:
    """Until no pass runs (a oneshot service is `activating` while its pass runs)."""
    wait_for(
        "the running pass to end",
        lambda: host.check_output("systemctl show --property=ActiveState --value %s", SERVICE) != "activating",
        timeout=120,
    )


@contextlib.contextmanager
def timer_silenced(host):
    """No timer tick inside the block (a runtime drop-in); the timer as converge left it after, ticking again."""
    host.check_output(
        "mkdir -p %s && printf '[Timer]\\nOnActiveSec=\\nOnActiveSec=1d\\n' > %s && systemctl daemon-reload"
        " && systemctl restart %s",
        os.path.dirname(SILENCE_DROPIN),
        SILENCE_DROPIN,
        TIMER,
    )
    try:
        wait_idle(host)
        yield
    finally:
        host.check_output("rm -f %s && systemctl daemon-reload && systemctl restart %s", SILENCE_DROPIN, TIMER)


# --- converge.yml again -------------------------------------------------------------------------------------------
def converge_with(request, tmp_path: Path, extra: dict, succeed: bool = True, tags: str = "") -> str:
    """converge.yml with the scenario's inventory, `extra` as extra vars (and --tags `tags`); its output, folded."""
    inventory = request.config.getoption("ansible_inventory")
    (tmp_path / "extra.json").write_text(json.dumps(extra), encoding="utf-8")
    argv = [str(Path(sys.executable).with_name("ansible-playbook")), "--inventory", inventory]
    argv += [str(SCENARIO / "converge.yml"), "--extra-vars", "@" + str(tmp_path / "extra.json")]
    argv += ["--tags", tags] if tags else []
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}  # molecule forces colours on
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=900, env=env)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert (result.returncode == 0) == succeed, output[-4000:]
    return " ".join(output.split())


def recap(output: str, node: str) -> str:
    return output.split(f"{node} : ok=")[-1][:120]
