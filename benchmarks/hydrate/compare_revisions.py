# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The transfer engine of this checkout against the one of an earlier git revision, with s5cmd as the yardstick.

One SeaweedFS, one dataset of run.py (``large``: a 1 GiB file + 200 files of 1 MiB; ``small``: 2,000 files of 64 KiB),
and in every round s5cmd, then the base revision's engine and this checkout's engine in alternating order, each
into a fresh destination after an untimed ``sync``. Medians over the rounds, with our process's user and system CPU time.
On a shared 2-core machine single runs differ by 2x; compare medians of interleaved rounds only. Not a test.

    .venv/bin/python benchmarks/hydrate/compare_revisions.py --base HEAD~1 --dataset large --rounds 8
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(Path(__file__).resolve().parent))

# pylint: disable=wrong-import-position
from run import DATASETS, make_dataset  # noqa: E402  (the datasets of run.py, the same bytes for the same seed)

from tests.support.s3_cli import load_engine  # noqa: E402  (the engine's files as plain modules, as the puller)
from tests.support.seaweedfs import SeaweedS3  # noqa: E402

MODULE_UTILS = "plugins/module_utils"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--base", default="HEAD", help="git revision of the engine to compare against (default HEAD)")
    parser.add_argument("--dataset", choices=("large", "small"), default="large")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20251122)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oceanid-hydrate-compare-"))
    base_dir = work / "base_module_utils"
    base_dir.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", args.base, MODULE_UTILS], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(base_dir), "--strip-components=2"], input=archive, check=True)
    engines = {
        "base " + args.base: load_engine(str(base_dir)),
        "this checkout": load_engine(str(REPO / MODULE_UTILS)),
    }
    server = SeaweedS3(str(work / "server"))
    server.start()
    try:
        server.boto3_client().create_bucket(Bucket="bench")
        make_dataset(work / "src", DATASETS[args.dataset]["files"], args.seed)
        current = engines["this checkout"]
        current.ingest(
            current.S3Client(
                current.S3Endpoint(server.endpoint_url, "us-east-1", server.access_key, server.secret_key)
            ),
            "bench",
            str(work / "src"),
            "m",
        )
        env = dict(os.environ, AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key)

        def s5cmd(dest: Path):
            subprocess.run(
                [
                    str(Path(sys.executable).with_name("s5cmd")),
                    "--endpoint-url",
                    server.endpoint_url,
                    "cp",
                    "s3://bench/models/m/*",
                    "%s/" % dest,
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )

        def ours(module):
            def copy(dest: Path):
                client = module.S3Client(
                    module.S3Endpoint(server.endpoint_url, "us-east-1", server.access_key, server.secret_key)
                )
                module.hydrate(client, "bench", str(dest), model_key="m", concurrency=16)

            return copy

        clients = {"s5cmd": s5cmd, **{name: ours(module) for name, module in engines.items()}}
        walls: dict[str, list[float]] = {name: [] for name in clients}
        cpus: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        order = list(clients)
        for round_number in range(args.rounds):
            # s5cmd first, then the two engines in turn swapped: a copy's speed here depends on what ran just
            # before it (page cache, write-back), so neither engine always follows the same one
            engines_order = order[1:] if round_number % 2 == 0 else order[:0:-1]
            for name in [order[0]] + engines_order:
                copy = clients[name]
                dest = work / "dest"
                os.sync()
                before, started = os.times(), time.monotonic()
                copy(dest)
                walls[name].append(time.monotonic() - started)
                after = os.times()
                cpus[name].append((after.user - before.user, after.system - before.system))
                shutil.rmtree(dest)
                for leftover in work.glob(".dest*"):
                    shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
            print(
                "round %d: %s" % (round_number + 1, ", ".join("%s %.2f s" % (n, w[-1]) for n, w in walls.items())),
                flush=True,
            )
        reference = statistics.median(walls["s5cmd"])
        print(
            "\n%s dataset, %d rounds, %d CPUs, load average at the end %.1f:"
            % (args.dataset, args.rounds, os.cpu_count() or 0, os.getloadavg()[0])
        )
        for name, values in walls.items():
            cpu = (
                ""
                if name == "s5cmd"
                else ", our CPU user %.2f s + system %.2f s"
                % (statistics.median(u for u, _s in cpus[name]), statistics.median(s for _u, s in cpus[name]))
            )
            median = statistics.median(values)
            print(
                "  %-20s median %.2f s (%.2f-%.2f), / s5cmd %.2f%s"
                % (name, median, min(values), max(values), median / reference, cpu)
            )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
