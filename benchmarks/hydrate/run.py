# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Model hydration from S3: our engine against s5cmd, rclone and boto3, on one real SeaweedFS.

Datasets (random bytes from a fixed seed), each uploaded once with our ingest (so a manifest exists):
  large: one 1 GiB file + 200 files of 1 MiB
  small: 2,000 files of 64 KiB
For each dataset, ``--runs`` rounds (4 give every client every place in the order once); in each round every
client copies the whole model into a fresh, empty directory, in an order that turns by one client per round
(clients interleaved, so drift on a shared machine hits all of them alike, and none always follows the same one):
  s5cmd    s5cmd cp 's3://<bucket>/models/<key>/*' <dest>/            (its defaults: 256 workers, 5 parts of 50 MiB)
  rclone   rclone copy bench:<bucket>/models/<key> <dest> --transfers 16 --checkers 16
  boto3    list the prefix, then download_file per key in a pool of 16 threads (TransferConfig max_concurrency=16)
  ours     python tests/support/s3_cli.py ... hydrate --model-key <key> (SHA-256 of every part checked)
Page cache is not dropped (we are not alone on the machine): SeaweedFS's volume files are warm in memory for
every client alike, and each destination is new. Each copy is checked for file count and bytes afterwards.
A ``sync`` runs before each copy (untimed, so no copy pays for the write-back of the one before) and after it
(timed apart): ours syncs before it publishes, the others leave their bytes in the page cache, so "with sync"
compares the time to the same durable copy.
Then the unchanged re-run: ours on the small dataset into a destination it already filled, through a
counting proxy, to count the GETs (there should be none) and time it.

Run from the repository root:  .venv/bin/python benchmarks/hydrate/run.py [--runs 4] [--no-write]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

# pylint: disable=wrong-import-position
from tests.support.seaweedfs import CountingProxy, SeaweedS3, venv_tool  # noqa: E402

ENGINE = REPO_ROOT / "tests" / "support" / "s3_cli.py"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
SECTION = "## Model hydration (S3)"
MiB = 1024 * 1024
BUCKET = "bench"
CLIENTS = ("s5cmd", "rclone", "boto3", "ours")
CONCURRENCY = 16
DATASETS = {
    "large": {
        "what": "one 1 GiB file + 200 files of 1 MiB",
        "files": {"weights/model.bin": 1024 * MiB, **{f"shards/shard-{i:03d}.bin": MiB for i in range(200)}},
    },
    "small": {
        "what": "2,000 files of 64 KiB",
        "files": {f"pieces/{i // 100:02d}/piece-{i:04d}.bin": 64 * 1024 for i in range(2000)},
    },
}


def make_dataset(root: Path, files: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    for relpath, size in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for start in range(0, size, 8 * MiB):
                handle.write(rng.randbytes(min(8 * MiB, size - start)))


def tree_totals(root: Path) -> tuple[int, int]:
    count = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            count += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return count, size


class Bench:
    """The server, the environment each client needs, and one timed copy per call."""

    def __init__(self, server: SeaweedS3, work: Path):
        self.server = server
        self.work = work
        self.env = {**os.environ, **server.environment(), "RCLONE_CONFIG": str(work / "rclone.conf")}
        remote = "RCLONE_CONFIG_BENCH_"
        self.env.update(
            {
                remote + "TYPE": "s3",
                remote + "PROVIDER": "Other",
                remote + "ENDPOINT": server.endpoint_url,
                remote + "ACCESS_KEY_ID": server.access_key,
                remote + "SECRET_ACCESS_KEY": server.secret_key,
                remote + "REGION": server.region,
                remote + "FORCE_PATH_STYLE": "true",
            }
        )

    def command(self, client: str, key: str, dest: Path, endpoint_url: str | None = None) -> list[str] | None:
        if client == "s5cmd":
            return [
                str(venv_tool("s5cmd")),
                "--endpoint-url",
                self.server.endpoint_url,
                "cp",
                f"s3://{BUCKET}/models/{key}/*",
                f"{dest}/",
            ]
        if client == "rclone":
            return [
                str(venv_tool("rclone")),
                "copy",
                f"bench:{BUCKET}/models/{key}",
                str(dest),
                "--transfers",
                str(CONCURRENCY),
                "--checkers",
                str(CONCURRENCY),
            ]
        if client == "ours":
            return [
                sys.executable,
                str(ENGINE),
                "--endpoint-url",
                endpoint_url or self.server.endpoint_url,
                "--region",
                self.server.region,
                "--bucket",
                BUCKET,
                "--concurrency",
                str(CONCURRENCY),
                "--json",
                "hydrate",
                "--model-key",
                key,
                "--dest",
                str(dest),
            ]
        return None  # boto3 runs in this process

    def boto3_copy(self, key: str, dest: Path) -> None:
        from boto3.s3.transfer import TransferConfig  # pylint: disable=import-outside-toplevel

        client = self.server.boto3_client(max_pool_connections=CONCURRENCY * 2)
        prefix = f"models/{key}/"
        keys = [
            obj["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]
        config = TransferConfig(max_concurrency=CONCURRENCY)

        def one(object_key: str) -> None:
            target = dest / object_key[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, object_key, str(target), Config=config)

        with concurrent.futures.ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            list(pool.map(one, keys))

    def copy(self, client: str, key: str, dest: Path, endpoint_url: str | None = None) -> tuple[float, dict]:
        """Copy the model into dest with one client; (wall seconds, ours' JSON result or {})."""
        command = self.command(client, key, dest, endpoint_url)
        started = time.perf_counter()
        if command is None:
            self.boto3_copy(key, dest)
            return time.perf_counter() - started, {}
        completed = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(
                f"{client} failed ({completed.returncode}): {shlex.join(command)}\n"
                f"{completed.stdout[-2000:]}\n{completed.stderr[-2000:]}"
            )
        return seconds, json.loads(completed.stdout) if client == "ours" else {}


def machine_info(work: Path) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = subprocess.run(["df", "-T", str(work)], capture_output=True, text=True, check=False).stdout.splitlines()[-1:]

    def version(command: list[str]) -> str:
        out = subprocess.run(command, capture_output=True, text=True, check=False).stdout.strip().splitlines()
        return out[0] if out else "?"

    import boto3  # pylint: disable=import-outside-toplevel

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "memory": f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "filesystem": " ".join(fs[0].split()[1:2]) if fs else "?",
        "weed": " ".join(["weed"] + version([str(venv_tool("weed")), "version"]).split()[2:3]),
        "s5cmd": version([str(venv_tool("s5cmd")), "version"]),
        "rclone": version([str(venv_tool("rclone")), "version"]),
        "boto3": boto3.__version__,
    }


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def run_dataset(
    bench: Bench, name: str, runs: int, work: Path
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(copy seconds, copy + sync seconds) per client.

    Ours syncs what it wrote before it publishes (a model on disk survives a power cut); the other clients leave
    their bytes in the page cache. The sync after each copy (timed separately) gives the time to the same
    durable copy, and every copy starts with nothing left to write back by the one before it.
    """
    key = f"bench-{name}"
    expected = (len(DATASETS[name]["files"]), sum(DATASETS[name]["files"].values()))
    times: dict[str, list[float]] = {client: [] for client in CLIENTS}
    durable: dict[str, list[float]] = {client: [] for client in CLIENTS}
    for round_number in range(runs):
        # The order turns by one client each round: here a copy's speed depends on which client ran just before it
        # (benchmarks/hydrate/compare_revisions.py measured up to 2x), so no client always follows the same one.
        order = CLIENTS[round_number % len(CLIENTS) :] + CLIENTS[: round_number % len(CLIENTS)]
        for client in order:
            dest = work / "runs" / f"{name}-{client}-{round_number}" / "model"
            dest.parent.mkdir(parents=True)
            os.sync()
            seconds, result = bench.copy(client, key, dest)
            started = time.perf_counter()
            os.sync()
            synced = seconds + time.perf_counter() - started
            got = tree_totals(dest)
            if got != expected:
                raise RuntimeError(f"{client} copied {got} (files, bytes) of {name}, expected {expected}")
            times[client].append(seconds)
            durable[client].append(synced)
            extra = f" (engine {result['seconds']:.2f} s, {result['mb_per_s']} MB/s)" if result else ""
            print(
                f"  {name} round {round_number + 1} {client:6s} {seconds:7.2f} s, with sync {synced:7.2f} s{extra}",
                flush=True,
            )
            shutil.rmtree(dest.parent)
    return times, durable


def unchanged_rerun(bench: Bench, runs: int, work: Path) -> list[tuple[float, float, int, int]]:
    """(wall s, engine s, GETs, HEADs) of ours re-hydrating the small dataset over itself, through the proxy."""
    dest = work / "runs" / "unchanged" / "model"
    dest.parent.mkdir(parents=True)
    with CountingProxy(bench.server.endpoint_url) as proxy:
        bench.copy("ours", "bench-small", dest, endpoint_url=proxy.url)
        rows = []
        for _round in range(runs):
            proxy.reset()
            seconds, result = bench.copy("ours", "bench-small", dest, endpoint_url=proxy.url)
            if result.get("changed"):
                raise RuntimeError(f"the unchanged re-run changed something: {result}")
            rows.append((seconds, result["seconds"], proxy.methods["GET"], proxy.methods["HEAD"]))
            print(
                f"  unchanged re-run {seconds:.3f} s (engine {result['seconds']:.3f} s), "
                f"{proxy.methods['GET']} GET, {proxy.methods['HEAD']} HEAD",
                flush=True,
            )
    shutil.rmtree(dest.parent)
    return rows


def report(
    args, info: dict, bench: Bench, results: dict, unchanged: list, loads: tuple[str, str], command_line: str
) -> str:
    lines = [
        SECTION,
        "",
        "Copying a model from S3 onto local disk: `s5cmd`, `rclone`, boto3's `download_file` and our engine "
        "(`plugins/module_utils/s3_model_transfer.py` run by `tests/support/s3_cli.py`, SHA-256 of every part checked against the manifest) from one "
        "SeaweedFS on loopback. Method and script: `benchmarks/hydrate/`.",
        "",
        "```console",
        command_line,
        "```",
        "",
        f"{info['nproc']} cores ({info['cpu']}), {info['memory']}, kernel {info['kernel']}, Python {info['python']}, "
        f"{info['filesystem']} under the work directory; {info['weed']}, s5cmd {info['s5cmd']}, {info['rclone']}, "
        f"boto3 {info['boto3']}. Load average before/after: {loads[0]} / {loads[1]}. "
        f"{args.runs} round{'s' if args.runs != 1 else ''}, medians (min-max); fresh empty destination each time; page cache not dropped; "
        '`sync` before each copy (not timed). "with sync": the copy plus a `sync` after it, i.e. until the bytes are on '
        "disk, which ours already waits for before it publishes and the others do not.",
        "",
    ]
    for name, (times, durable) in results.items():
        size = sum(DATASETS[name]["files"].values())
        reference = statistics.median(times["s5cmd"])
        durable_reference = statistics.median(durable["s5cmd"])
        lines += [
            f"**{name}**: {DATASETS[name]['what']} ({size / 1e6:,.0f} MB)",
            "",
            "| client | median | min-max | MB/s | / s5cmd | with sync | / s5cmd with sync |",
            "|---|---|---|---|---|---|---|",
        ]
        for client in CLIENTS:
            median = statistics.median(times[client])
            synced = statistics.median(durable[client])
            lines.append(
                f"| {client} | {median:.2f} s | {min(times[client]):.2f}-{max(times[client]):.2f} s | "
                f"{size / 1e6 / median:,.0f} | {median / reference:.2f} | {synced:.2f} s | {synced / durable_reference:.2f} |"
            )
        lines.append("")
    for client, argv in (
        ("s5cmd", bench.command("s5cmd", "<key>", Path("<dest>"))),
        ("rclone", bench.command("rclone", "<key>", Path("<dest>"))),
        ("ours", bench.command("ours", "<key>", Path("<dest>"))),
    ):
        lines.append(f"- {client}: `{shlex.join(argv).replace(str(REPO_ROOT) + '/', '')}`")
    lines.append(
        f"- boto3: list, then `download_file` per key in {CONCURRENCY} threads, `TransferConfig(max_concurrency={CONCURRENCY})`"
    )
    lines.append("")
    if unchanged:
        walls = [row[0] for row in unchanged]
        engine = [row[1] for row in unchanged]
        lines += [
            f"Unchanged re-run of **small** (ours, through the counting proxy): {statistics.median(walls):.3f} s wall "
            f"(process start included; the engine itself {statistics.median(engine):.3f} s), "
            f"{max(row[2] for row in unchanged)} GET and {max(row[3] for row in unchanged)} HEAD per run.",
            "",
        ]
    ratios = {name: statistics.median(t["ours"]) / statistics.median(t["s5cmd"]) for name, (t, _d) in results.items()}
    verdicts = []
    durable_ratios = {
        name: statistics.median(d["ours"]) / statistics.median(d["s5cmd"]) for name, (_t, d) in results.items()
    }
    if "large" in ratios:
        verdicts.append(
            f"large {ratios['large']:.2f} (target <= 1.0: {'met' if ratios['large'] <= 1.0 else 'NOT met'}; "
            f"with sync {durable_ratios['large']:.2f})"
        )
    if "small" in ratios:
        verdicts.append(
            f"small {ratios['small']:.2f} (target <= 1.2: {'met' if ratios['small'] <= 1.2 else 'NOT met'}; "
            f"with sync {durable_ratios['small']:.2f})"
        )
    if unchanged:
        ok = max(row[0] for row in unchanged) < 1.0 and max(row[2] for row in unchanged) == 0
        verdicts.append(f"unchanged re-run under 1 s with zero GETs: {'met' if ok else 'NOT met'}")
    lines += [f"Wall ratio ours/s5cmd: {'; '.join(verdicts)}. Measured {datetime.date.today().isoformat()}.", ""]
    return "\n".join(lines)


def write_section(text: str) -> None:
    """Replace (or add) our section of docs/benchmarks.md; other sections stay as they are."""
    current = (
        DOCS.read_text(encoding="utf-8")
        if DOCS.exists()
        else ("# Benchmarks\n\nMeasured numbers, with the command that produced them and the machine they ran on.\n")
    )
    start = current.find(SECTION + "\n")
    if start < 0:
        updated = current.rstrip("\n") + "\n\n" + text
    else:
        end = current.find("\n## ", start + len(SECTION))
        updated = current[:start] + text + ("\n" + current[end + 1 :] if end >= 0 else "")
    DOCS.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument(
        "--runs", type=int, default=4, help="rounds per dataset (default 4: each client in each place once)"
    )
    parser.add_argument("--datasets", default="large,small", help="comma-separated: large, small")
    parser.add_argument("--seed", type=int, default=20251122)
    parser.add_argument(
        "--workdir", type=Path, help="where the server, datasets and copies go (default: a temporary directory)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help=f"print only; do not update {DOCS.relative_to(REPO_ROOT)}"
    )
    args = parser.parse_args()
    names = [name for name in args.datasets.split(",") if name]
    unknown = set(names) - set(DATASETS)
    if unknown:
        parser.error(f"unknown datasets {sorted(unknown)}; choose from {sorted(DATASETS)}")
    command_line = shlex.join([".venv/bin/python", "benchmarks/hydrate/run.py"] + sys.argv[1:])
    work = Path(tempfile.mkdtemp(prefix="hydrate-bench-", dir=args.workdir))
    loads = [load_average()]
    info = machine_info(work)
    print(f"$ {command_line}\nmachine: {info}\nload average: {loads[0]}\nwork directory: {work}", flush=True)
    server = SeaweedS3(work / "seaweedfs")
    try:
        server.start()
        print(f"SeaweedFS {server.endpoint_url} ready in {server.startup_seconds:.1f} s", flush=True)
        server.boto3_client().create_bucket(Bucket=BUCKET)
        bench = Bench(server, work)
        for number, name in enumerate(names):
            src = work / "src" / name
            started = time.perf_counter()
            make_dataset(src, DATASETS[name]["files"], args.seed + number)
            ingest = subprocess.run(
                [
                    sys.executable,
                    str(ENGINE),
                    "--endpoint-url",
                    server.endpoint_url,
                    "--region",
                    server.region,
                    "--bucket",
                    BUCKET,
                    "--json",
                    "ingest",
                    "--src",
                    str(src),
                    "--model-key",
                    f"bench-{name}",
                ],
                env=bench.env,
                capture_output=True,
                text=True,
                check=True,
            )
            uploaded = json.loads(ingest.stdout)
            print(
                f"dataset {name}: {DATASETS[name]['what']}, made and ingested in {time.perf_counter() - started:.1f} s "
                f"({len(uploaded['uploaded'])} files)",
                flush=True,
            )
            shutil.rmtree(src)
        results = {name: run_dataset(bench, name, args.runs, work) for name in names}
        unchanged = unchanged_rerun(bench, args.runs, work) if "small" in names else []
    finally:
        server.stop()
    loads.append(load_average())
    text = report(args, info, bench, results, unchanged, (loads[0], loads[1]), command_line)
    print("\n" + text)
    if not args.no_write:
        write_section(text)
        print(f"(written to {DOCS.relative_to(REPO_ROOT)})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
