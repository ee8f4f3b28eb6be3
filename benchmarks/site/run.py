# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The unchanged site run: playbooks/site.yml on the converged lab fleet, nothing to change, timed N times.

Each run is `ansible-playbook -i <inventory> playbooks/site.yml` with the ansible.posix.json stdout callback
(so that every task's duration and every host's result can be counted), under the lab lock
(/tmp/oceanid-lab.lock, one run per hold: other sessions converge the same fleet). It prints, per run, the wall
time, the tasks, the host-tasks (one task on one host, skipped ones included: what the recap counts), seconds per
host-task and changed; then the median, and the ten slowest tasks of the median run. A run with changed > 0 or a
failure is reported and makes the script exit non-zero: the figure is only meaningful on a converged fleet.

The fleet must be up and converged first (`make site`). Run from the repository root:
  .venv/bin/python benchmarks/site/run.py [--runs 5] [--inventory inventories/lab] [--playbook playbooks/site.yml]
                                          [--write] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "## Unchanged site run"
MARK_START = "<!-- figures written by benchmarks/site/run.py --write: start -->"
MARK_END = "<!-- figures written by benchmarks/site/run.py --write: end -->"
LOCK = "/tmp/oceanid-lab.lock"


def parse_time(text: str) -> float:
    """ansible.posix.json's timestamps (ISO 8601, UTC, with a Z) as seconds since the epoch."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def summarize(report: dict) -> dict:
    """Tasks, host-tasks, statuses and per-task durations from one ansible.posix.json report."""
    tasks = []
    host_tasks = 0
    changed = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            hosts = task.get("hosts", {})
            if not hosts:
                continue  # a task no host ran (every host left by a meta: end_play before it)
            host_tasks += len(hosts)
            changed += [f"{task['task']['name']} on {host}" for host, result in hosts.items() if result.get("changed")]
            duration = task["task"].get("duration", {})
            seconds = parse_time(duration["end"]) - parse_time(duration["start"]) if "end" in duration else 0.0
            tasks.append(
                {"name": task["task"]["name"], "play": play["play"]["name"], "hosts": len(hosts), "seconds": seconds}
            )
    stats = report.get("stats", {})
    total = {
        key: sum(host.get(key, 0) for host in stats.values())
        for key in ("ok", "changed", "skipped", "failures", "unreachable")
    }
    return {
        "tasks": len(tasks),
        "host_tasks": host_tasks,
        "stats": total,
        "changed_tasks": changed,
        "task_times": tasks,
    }


def run_once(args: argparse.Namespace, index: int) -> dict:
    """One unchanged run under the lab lock; the json report is kept under --keep when given."""
    command = ["ansible-playbook", "-i", args.inventory, args.playbook]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORCE_COLOR="0")
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    with open(LOCK, "a", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        load = os.getloadavg()[0]
        start = time.monotonic()
        proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)
        wall = time.monotonic() - start
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        (Path(args.keep) / f"run{index}.json").write_text(proc.stdout, encoding="utf-8")
    try:
        report = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError:
        sys.exit(f"run {index}: no JSON report from ansible-playbook (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = summarize(report)
    summary.update(wall=wall, rc=proc.returncode, load=load)
    return summary


def fmt_run(index: int, run: dict) -> str:
    stats = run["stats"]
    return (
        f"run {index}: {run['wall']:6.1f} s  tasks {run['tasks']:4d}  host-tasks {run['host_tasks']:4d}  "
        f"{run['wall'] / run['host_tasks']:.3f} s/host-task  ok {stats['ok']} changed {stats['changed']} "
        f"skipped {stats['skipped']} failed {stats['failures']} unreachable {stats['unreachable']}  "
        f"load(1 min) before {run['load']:.2f}  rc {run['rc']}"
    )


def top_tasks(run: dict, count: int = 10) -> list[dict]:
    return sorted(run["task_times"], key=lambda task: task["seconds"], reverse=True)[:count]


def markdown(args: argparse.Namespace, runs: list[dict], median_run: dict, command: str) -> str:
    walls = [run["wall"] for run in runs]
    loads = ", ".join(f"{run['load']:.1f}" for run in runs)
    lines = [
        f"Measured {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC with `benchmarks/site/run.py` "
        f"({len(runs)} runs on {os.cpu_count()} cores shared with other sessions; 1-minute load average before "
        f"each run: {loads}). Each run:",
        "",
        "```console",
        command,
        "```",
        "",
        "| run | wall (s) | tasks | host-tasks | s per host-task | changed |",
        "|---|---|---|---|---|---|",
    ]
    for index, run in enumerate(runs, 1):
        lines.append(
            f"| {index} | {run['wall']:.1f} | {run['tasks']} | {run['host_tasks']} | "
            f"{run['wall'] / run['host_tasks']:.3f} | {run['stats']['changed']} |"
        )
    lines += [
        "",
        f"Median {statistics.median(walls):.1f} s (min {min(walls):.1f}, max {max(walls):.1f}); "
        f"{statistics.median(walls) / median_run['host_tasks']:.3f} s per host-task.",
        "",
        "The ten slowest tasks of the median run (a task's time is from its start to its last host's result):",
        "",
        "| task | hosts | s |",
        "|---|---|---|",
    ]
    lines += [f"| {task['name']} | {task['hosts']} | {task['seconds']:.2f} |" for task in top_tasks(median_run)]
    changed = [f"run {index}: {what}" for index, run in enumerate(runs, 1) for what in run["changed_tasks"]]
    if changed:
        lines += ["", "Changed (these runs did not find the fleet converged):", ""] + [f"- {what}" for what in changed]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Put the figures between the section's markers in docs/benchmarks.md (the section is made at the end of the
    file when missing); the section's other text, and every other section, stay as they are."""
    doc = DOCS.read_text(encoding="utf-8")
    block = f"{MARK_START}\n{text}{MARK_END}\n"
    if SECTION + "\n" not in doc:
        doc = doc.rstrip("\n") + f"\n\n{SECTION}\n\n{block}"
    elif MARK_START in doc:
        doc = doc[: doc.index(MARK_START)] + block + doc[doc.index(MARK_END) + len(MARK_END) + 1 :]
    else:
        at = doc.index(SECTION + "\n") + len(SECTION) + 1
        doc = doc[:at] + "\n" + block + doc[at:]
    DOCS.write_text(doc, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--inventory", default="inventories/lab")
    parser.add_argument("--playbook", default="playbooks/site.yml")
    parser.add_argument("--write", action="store_true", help=f'write the "{SECTION[3:]}" section of docs/benchmarks.md')
    parser.add_argument("--keep", help="keep each run's ansible.posix.json report in this directory")
    args = parser.parse_args()

    command = f"ANSIBLE_STDOUT_CALLBACK=ansible.posix.json ansible-playbook -i {shlex.quote(args.inventory)} {shlex.quote(args.playbook)}"
    print(f"each run: {command}  (under flock {LOCK}; {os.cpu_count()} cores)", flush=True)
    runs = []
    for index in range(1, args.runs + 1):
        run = run_once(args, index)
        runs.append(run)
        print(fmt_run(index, run), flush=True)
        for what in run["changed_tasks"]:
            print(f"  changed: {what}", flush=True)

    walls = [run["wall"] for run in runs]
    median_wall = statistics.median(walls)
    median_run = min(runs, key=lambda run: abs(run["wall"] - median_wall))
    print(
        f"median {median_wall:.1f} s (min {min(walls):.1f}, max {max(walls):.1f}), "
        f"{median_wall / median_run['host_tasks']:.3f} s per host-task"
    )
    print("ten slowest tasks of the median run:")
    for task in top_tasks(median_run):
        print(f"  {task['seconds']:6.2f} s  {task['hosts']} host(s)  {task['name']}")

    bad = [
        index
        for index, run in enumerate(runs, 1)
        if run["rc"] != 0 or run["stats"]["changed"] or run["stats"]["failures"]
    ]
    if args.write:  # written either way: the changed column and the list under the table say which runs do not count
        write_section(markdown(args, runs, median_run, command))
        print(f"wrote {DOCS.relative_to(REPO_ROOT)}: {SECTION[3:]}")
    if bad:
        print(
            f"runs {bad} changed something or failed: the fleet was not converged, the figures do not count",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
