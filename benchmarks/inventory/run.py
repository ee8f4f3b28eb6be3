# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.fleet against amazon.aws.aws_ec2: ansible-inventory --list over 2,000 EC2 instances in 4 regions.

The EC2 API is moto in server mode, one process per region (in AWS every region is its own endpoint; one moto
process would answer the regions one after another whatever the client does), behind the counting proxy of
tests/support/moto_ec2.py, which both plugins use as their endpoint_url. The proxy counts the API calls of each run.

Both plugins get equivalent configurations: the same regions, server-side filters (tag fleet:managed=true, state
running), host names (instance ID), ansible_host (public, else private address) and groups: one group per value of
the fleet:role tag, gpu_hosts for GPU instance types, a group per region and one for all EC2 hosts. Ours makes them
natively; aws_ec2 makes them with keyed_groups, groups and compose. Both cache with ansible.builtin.jsonfile. The
benchmark checks that both inventories have the same hosts and the same members in those groups before timing.

Each round runs, in this order, ours cold (cache directory removed first), ours warm, aws_ec2 cold, aws_ec2 warm,
each as ``ansible-inventory -i <config> --list`` (output discarded), and, with --load, the same four as an inventory
load only (a fresh Python that builds ansible's InventoryManager, which is what ansible-playbook does before its
first task; without ansible-inventory's JSON dump of every host's variables).

More warm rows show what the number of host variables costs: ours with ``hostvars: [all]`` (every instance field)
and with ``hostvars: [instance_id]``, and two "floors", script inventories that print a fixed JSON: the inventory
ours printed (variables marked unsafe as ours marks them), and the same hosts and groups without any host variable:
what ansible-inventory itself costs for 2,000 hosts, whatever the source.

Every run uses the settings of this repository's ansible.cfg that shape an inventory run, as a user running
ansible-inventory from the repository root gets them: inject_facts_as_vars is off there, which spares ansible-inventory
a per-host fact clean-up (ansible.vars.clean.clean_facts) whatever the source. One more row is ours warm with
ansible-core's defaults instead (inject_facts_as_vars on), as in a project whose ansible.cfg does not turn it off.

Run from the repository root:  .venv/bin/python benchmarks/inventory/run.py [--rounds 5] [--load]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import configparser
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.support.ansible_env import isolated_ansible_env  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.inventory_output import group_members  # noqa: E402  pylint: disable=wrong-import-position
from tests.support.moto_ec2 import MotoEC2, aws_environment, seed_instances  # noqa: E402  pylint: disable=wrong-import-position

VENV_BIN = REPO_ROOT / ".venv" / "bin"
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1"]
# (instance type, fleet:role): 10 kinds, spread evenly; 6 of 10 have GPUs
KINDS = [
    ("g6.xlarge", "gpu_hosts"),
    ("g6.12xlarge", "gpu_hosts"),
    ("g5.2xlarge", "gpu_hosts"),
    ("g4dn.xlarge", "k3s_agents"),
    ("g6e.xlarge", "gpu_hosts"),
    ("p4d.24xlarge", "gpu_hosts"),
    ("t3.large", "k3s_agents"),
    ("t3.medium", "k3s_servers"),
    ("m6i.large", "storage_nodes"),
    ("c6i.large", "k3s_agents"),
]
# warm-only variants of ours: every instance field as a host variable, and the instance ID only
HOSTVARS_VARIANTS = {"ours_all": ["all"], "ours_min": ["instance_id"]}
GPU_FAMILIES = ["g4dn", "g5", "g6", "g6e", "gr6", "p4d", "p4de", "p5", "p5e", "p5en"]
LOAD_SCRIPT = """
import sys, time
start = time.perf_counter()
from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
inventory = InventoryManager(loader=DataLoader(), sources=[sys.argv[1]])
print(len(inventory.hosts), time.perf_counter() - start)
"""


def configs(directory: Path, url: str, regions: list[str]) -> dict[str, Path]:
    cache = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_timeout": 3600}
    ours = {
        "plugin": "oceanid.fleet.fleet",
        "ec2": [
            {
                "name": "ec2",
                "regions": regions,
                "tags": {"fleet:managed": "true"},
                "states": ["running"],
                "hostnames": ["instance-id"],
                "ansible_host": ["public-ip-address", "private-ip-address"],
                "role_tag": "fleet:role",
                "region_groups": True,
                "endpoint_url": url,
            }
        ],
        # botocore's default read time-out, which aws_ec2 uses: moto on a busy machine can take over our default
        # 10 s to render one page of 1,000 instances, and a retried query would time the retries, not the plugin
        "timeout": 60,
        "gpu_group": "gpu_hosts",
        **cache,
        "cache_connection": str(directory / "cache-ours"),
    }
    theirs = {
        "plugin": "amazon.aws.aws_ec2",
        "regions": regions,
        "endpoint_url": url,
        "filters": {"tag:fleet:managed": "true", "instance-state-name": ["running"]},
        "hostnames": ["instance-id"],
        "keyed_groups": [{"key": "tags['fleet:role']", "separator": ""}, {"key": "placement.region", "prefix": "ec2"}],
        "groups": {"gpu_hosts": "instance_type.split('.')[0] in %s" % json.dumps(GPU_FAMILIES), "ec2": "true"},
        "compose": {"ansible_host": "public_ip_address | default(private_ip_address)"},
        **cache,
        "cache_connection": str(directory / "cache-aws"),
    }
    paths = {"ours": directory / "bench.fleet.yml", "aws_ec2": directory / "bench.aws_ec2.yml"}
    paths["ours"].write_text(yaml.safe_dump(ours, sort_keys=False))
    paths["aws_ec2"].write_text(yaml.safe_dump(theirs, sort_keys=False))
    for variant, fields in HOSTVARS_VARIANTS.items():
        config = json.loads(json.dumps(ours))
        config["ec2"][0]["hostvars"] = fields
        config["cache_connection"] = str(directory / ("cache-" + variant))
        paths[variant] = directory / ("bench-%s.fleet.yml" % variant)
        paths[variant].write_text(yaml.safe_dump(config, sort_keys=False))
    return paths


def seed(moto: MotoEC2, regions: list[str], per_region: int) -> None:
    def one(region: str) -> int:
        client = moto.client("ec2", region)
        batch = per_region // len(KINDS)
        count = 0
        for index, (instance_type, role) in enumerate(KINDS):
            n = batch + (1 if index < per_region % len(KINDS) else 0)
            count += len(
                seed_instances(client, n, instance_type, {"fleet:managed": "true", "fleet:role": role}, batch=100)
            )
        return count

    with concurrent.futures.ThreadPoolExecutor(len(regions)) as pool:
        total = sum(pool.map(one, regions))
    print(f"seeded {total} instances over {len(regions)} region(s): {', '.join(regions)}", flush=True)


def repository_settings() -> dict[str, str]:
    """The settings of this repository's ansible.cfg that change what ansible-inventory --list does per host."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.read(REPO_ROOT / "ansible.cfg")
    value = parser.get("defaults", "inject_facts_as_vars", fallback=None)
    return {} if value is None else {"ANSIBLE_INJECT_FACT_VARS": value}


def environment(directory: Path) -> dict[str, str]:
    # Default inventory plugins: the `auto` plugin loads the one a file names in its `plugin:` key, so a run loads
    # only its own plugin (listing both in enable_plugins would import aws_ec2 and boto3 in every run of ours).
    return isolated_ansible_env(
        directory,
        aws_environment(),
        ANSIBLE_HOME=str(directory / "home"),
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_INVENTORY_UNPARSED_FAILED="true",
        **repository_settings(),
    )


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def inventory_list(path: Path, env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall and CPU seconds (user + system, of ansible-inventory and its children) of one --list, and its output."""
    cpu = cpu_seconds()
    start = time.perf_counter()
    done = subprocess.run(
        [str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list"], env=env, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ansible-inventory failed for {path.name}:\n{done.stderr.decode()[-3000:]}")
    return elapsed, cpu_seconds() - cpu, done.stdout


def write_floor(directory: Path, name: str, data: dict) -> Path:
    """A script inventory that prints ``data``: the cost of ansible-inventory itself for it, whatever the source
    (no parsing, no cache, no API). Values written as {"__ansible_unsafe": ...} stay unsafe, as ours made them."""
    (directory / f"{name}.json").write_text(json.dumps(data))
    script = directory / f"{name}.sh"
    script.write_text(f"#!/bin/sh\nexec cat {directory / name}.json\n")
    script.chmod(0o755)
    return script


def floors(directory: Path, output: bytes) -> dict[str, Path]:
    """The floor with ours' output as printed, and the bare floor: the same hosts and groups, no host variable."""
    data = json.loads(output)
    bare = {name: body for name, body in data.items() if name != "_meta"}
    bare["_meta"] = {"hostvars": {}}
    return {"floor": write_floor(directory, "floor", data), "floor_bare": write_floor(directory, "floor-bare", bare)}


def inventory_load(path: Path, env: dict[str, str]) -> float:
    done = subprocess.run(
        [str(VENV_BIN / "python"), "-c", LOAD_SCRIPT, str(path)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"inventory load failed for {path.name}:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


def check_equivalent(outputs: dict[str, bytes], regions: list[str]) -> None:
    """Same hosts, same members in the groups both are asked to make."""
    data = {name: json.loads(raw) for name, raw in outputs.items()}
    hosts = {name: set(d["_meta"]["hostvars"]) for name, d in data.items()}
    if hosts["ours"] != hosts["aws_ec2"] or len(hosts["ours"]) == 0:
        raise SystemExit(f"the inventories differ: {len(hosts['ours'])} hosts against {len(hosts['aws_ec2'])}")
    compared = ["gpu_hosts", "k3s_agents", "k3s_servers", "storage_nodes", "ec2"] + [
        "ec2_" + r.replace("-", "_") for r in regions
    ]
    groups = {name: group_members(d) for name, d in data.items()}
    for group in compared:
        members = {name: groups[name].get(group, set()) for name in data}
        if members["ours"] != members["aws_ec2"] or not members["ours"]:
            raise SystemExit(f"group {group} differs: {len(members['ours'])} hosts against {len(members['aws_ec2'])}")
    for host in list(hosts["ours"])[:50]:
        ours = data["ours"]["_meta"]["hostvars"][host]["ansible_host"]
        theirs = data["aws_ec2"]["_meta"]["hostvars"][host]["ansible_host"]
        if ours != theirs:
            raise SystemExit(f"ansible_host of {host} differs: {ours} against {theirs}")
    print(f"equivalent: {len(hosts['ours'])} hosts, groups {', '.join(compared)} with the same members", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


RUNS = (
    ("ours", "cold"),
    ("ours", "warm"),
    ("ours_all", "warm"),
    ("ours_min", "warm"),
    ("ours", "warm, core defaults"),
    ("aws_ec2", "cold"),
    ("aws_ec2", "warm"),
    ("floor", "static"),
    ("floor_bare", "static"),
)
# ansible-core's default for what this repository's ansible.cfg changes: inject_facts_as_vars (on) copies every host's
# facts into top-level variables, and ansible-inventory --list cleans each host's (empty) facts for it.
CORE_DEFAULTS = {"ANSIBLE_INJECT_FACT_VARS": "true"}
LABELS = {
    "ours_all warm": "ours warm, hostvars: [all]",
    "ours_min warm": "ours warm, hostvars: [instance_id]",
    "ours warm, core defaults": "ours warm, ansible-core defaults",
    "floor static": "script printing ours' output",
    "floor_bare static": "floor, no host variables",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instances", type=int, default=2000, help="in all, spread evenly over the regions")
    parser.add_argument(
        "--regions", type=int, default=4, choices=range(1, len(REGIONS) + 1), help="how many regions (default 4)"
    )
    parser.add_argument(
        "--ours-only", action="store_true", help="leave out aws_ec2 (its rows and the equivalence check)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="then N back-to-back pairs of ours warm and the floor: the median of the pairs' ratios (a busy machine)",
    )
    parser.add_argument("--load", action="store_true", help="also time the inventory load alone (InventoryManager)")
    parser.add_argument(
        "--shared-moto", action="store_true", help="one moto process for every region instead of one per region"
    )
    args = parser.parse_args()
    regions = REGIONS[: args.regions]
    runs = [run for run in RUNS if not (args.ours_only and run[0] == "aws_ec2")]

    directory = Path(tempfile.mkdtemp(prefix="oceanid-bench-inventory-"))
    print(
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    print(
        "settings from this repository's ansible.cfg: "
        + (", ".join(f"{k}={v}" for k, v in repository_settings().items()) or "none that shape an inventory run"),
        flush=True,
    )
    moto = MotoEC2(None if args.shared_moto else regions, log_dir=directory).start()
    try:
        seed(moto, regions, args.instances // len(regions))
        paths = configs(directory, moto.url, regions)
        if args.ours_only:
            del paths["aws_ec2"]
        env = environment(directory)
        caches = {"ours": directory / "cache-ours", "aws_ec2": directory / "cache-aws"}
        caches.update({variant: directory / ("cache-" + variant) for variant in HOSTVARS_VARIANTS})

        # warm-up and equivalence check (not timed): one cold run of each
        outputs = {}
        for name, path in paths.items():
            shutil.rmtree(caches[name], ignore_errors=True)
            outputs[name] = inventory_list(path, env)[2]
        if not args.ours_only:
            check_equivalent(outputs, regions)
        for variant in HOSTVARS_VARIANTS:
            inventory_list(paths[variant], env)  # fills its cache
        paths.update(floors(directory, outputs["ours"]))

        times: dict[str, list[float]] = {}
        cpus: dict[str, list[float]] = {}
        calls: dict[str, list[int]] = {}
        for round_number in range(1, args.rounds + 1):
            line = []
            for name, state in runs:
                if state == "cold":
                    shutil.rmtree(caches[name], ignore_errors=True)
                moto.clear_calls()
                elapsed, cpu, _output = inventory_list(
                    paths[name], {**env, **CORE_DEFAULTS} if "core defaults" in state else env
                )
                key = f"{name} {state}"
                times.setdefault(key, []).append(elapsed)
                cpus.setdefault(key, []).append(cpu)
                calls.setdefault(key, []).append(moto.count())
                line.append(f"{key} {elapsed:.2f} s ({moto.count()} calls)")
                if args.load and name in ("ours", "aws_ec2", "floor_bare") and state in ("cold", "warm", "static"):
                    if state == "cold":
                        shutil.rmtree(caches[name], ignore_errors=True)
                    times.setdefault(f"{key} load", []).append(inventory_load(paths[name], env))
            print(f"round {round_number}: " + ", ".join(line), flush=True)

        print()
        print(
            f"ansible-inventory --list, {args.rounds} rounds, medians of wall time (min-max), CPU time of ansible-inventory,"
            " API calls per run:"
        )
        for key in (f"{name} {state}" for name, state in runs):
            extra = (
                f", load only {median(times[key + ' load']):.2f} s"
                if args.load and key in times and key + " load" in times
                else ""
            )
            print(
                f"  {LABELS.get(key, key):30s} {median(times[key]):6.2f} s ({min(times[key]):.2f}-{max(times[key]):.2f}), "
                f"CPU {median(cpus[key]):5.2f} s, {max(calls[key])} calls{extra}"
            )
        floor = median(times["floor_bare static"])
        floor_ratio = median(times["ours warm"]) / floor
        # each round's ours warm over the same round's floor: robust to a machine whose load drifts between rounds
        per_round = [ours / bare for ours, bare in zip(times["ours warm"], times["floor_bare static"], strict=True)]
        print(
            f"  ours warm / floor (same hosts and groups, no host variable): {floor_ratio:.2f}x "
            f"({median(times['ours warm']):.2f} s / {floor:.2f} s; CPU {median(cpus['ours warm']) / median(cpus['floor_bare static']):.2f}x)"
            + (
                f", load only {median(times['ours warm load']) / median(times['floor_bare static load']):.2f}x"
                if args.load
                else ""
            )
            + f"; per round {', '.join(f'{r:.2f}' for r in per_round)}, median {median(per_round):.2f}x"
            + f"; target <= 1.2x: {'met' if max(floor_ratio, median(per_round)) <= 1.2 else 'NOT met'}"
        )
        print(
            f"  ours warm against a script printing the same inventory: "
            f"{median(times['ours warm']) - median(times['floor static']):+.2f} s wall, "
            f"{median(cpus['ours warm']) - median(cpus['floor static']):+.2f} s CPU"
        )
        print(
            f"  ours warm: {max(calls['ours warm'])} API calls; with ansible-core's defaults "
            f"{median(times['ours warm, core defaults']):.2f} s ({median(times['ours warm, core defaults']) / floor:.2f}x the floor)"
        )
        if not args.ours_only:
            cold_ratio = median(times["ours cold"]) / median(times["aws_ec2 cold"])
            warm_ratio = median(times["ours warm"]) / median(times["aws_ec2 warm"])
            print(
                f"  ratio ours/aws_ec2: cold {cold_ratio:.2f}, warm {warm_ratio:.2f} (CPU: cold "
                f"{median(cpus['ours cold']) / median(cpus['aws_ec2 cold']):.2f}, warm {median(cpus['ours warm']) / median(cpus['aws_ec2 warm']):.2f})"
                f"; target cold <= 0.5: {'met' if cold_ratio <= 0.5 else 'NOT met'}"
            )
            if args.load:
                print(
                    f"  load-only ratio ours/aws_ec2: cold {median(times['ours cold load']) / median(times['aws_ec2 cold load']):.2f}, "
                    f"warm {median(times['ours warm load']) / median(times['aws_ec2 warm load']):.2f}"
                )
        if args.pairs:
            ratios, cpu_ratios = [], []
            for _pair in range(args.pairs):
                ours_wall, ours_cpu, _output = inventory_list(paths["ours"], env)
                floor_wall, floor_cpu, _output = inventory_list(paths["floor_bare"], env)
                ratios.append(ours_wall / floor_wall)
                cpu_ratios.append(ours_cpu / floor_cpu)
            print(
                f"  {args.pairs} back-to-back pairs, ours warm / floor: median {median(ratios):.2f}x wall "
                f"({min(ratios):.2f}-{max(ratios):.2f}), {median(cpu_ratios):.2f}x CPU "
                f"({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})"
            )
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        moto.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
