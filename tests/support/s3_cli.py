# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The model transfer engine as a command (the benchmarks and the integration tests run it).

It imports the engine's files in plugins/module_utils/ (s3_client, model_manifest, local_tree, s3_model_transfer,
s3_model_upload) as plain modules, the way the model puller does on GPU hosts, so running it also checks that those files work outside the collection:

  python tests/support/s3_cli.py --endpoint-url URL --bucket B --json hydrate --model-key K --dest D
  python tests/support/s3_cli.py --endpoint-url URL --bucket B ingest --src DIR --model-key K
"""

import argparse
import importlib
import json
import os
import sys
import types

MODULE_UTILS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "module_utils")
ENGINE_MODULES = ("s3_client", "model_manifest", "local_tree", "s3_model_transfer", "s3_model_upload")


def load_engine(directory=MODULE_UTILS):
    """The engine in ``directory`` (a module_utils folder, this checkout's or an older revision's) imported as
    plain modules: a namespace with S3Endpoint, S3Client, TransferError, hydrate and ingest. Two directories
    can be loaded side by side (each load takes its modules out of sys.modules again)."""
    if not os.path.exists(os.path.join(directory, "s3_model_transfer.py")):
        names = ("s3_transfer",)  # revisions before the split: one file
    else:
        names = ENGINE_MODULES
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    sys.path.insert(0, os.path.abspath(directory))
    try:
        loaded = [importlib.import_module(name) for name in names]
    finally:
        sys.path.remove(os.path.abspath(directory))
        for name in names:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    engine = types.SimpleNamespace()
    for module in loaded:
        engine.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    return engine


_OPTIONS = {"hydrate": ("model_key", "prefix", "delete_extra"), "ingest": ("model_key", "label", "part_size")}


def _parser(engine):
    parser = argparse.ArgumentParser(description="Verified, atomic model transfers between S3 and a local directory.")
    parser.add_argument(
        "--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    parser.add_argument("--region", default=None)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--no-verify-tls", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    hyd = sub.add_parser("hydrate")
    src = hyd.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-key")
    src.add_argument("--prefix")
    hyd.add_argument("--dest", required=True)
    hyd.add_argument("--delete-extra", action="store_true")
    hyd.add_argument("--check", action="store_true", help="report the plan only")
    ing = sub.add_parser("ingest")
    ing.add_argument("--src", required=True)
    ing.add_argument("--model-key", required=True)
    ing.add_argument("--label")
    ing.add_argument("--part-size", type=int, default=engine.DEFAULT_PART_SIZE)
    ing.add_argument("--check", action="store_true")
    return parser


def main(argv=None):
    engine = load_engine()
    args = _parser(engine).parse_args(argv)
    try:
        client = engine.S3Client(
            engine.S3Endpoint(args.endpoint_url, args.region, verify_tls=not args.no_verify_tls),
            max_connections=args.concurrency,
        )
        transfer, local = (engine.hydrate, args.dest) if args.command == "hydrate" else (engine.ingest, args.src)
        options = {name: getattr(args, name) for name in _OPTIONS[args.command]}
        result = transfer(client, args.bucket, local, concurrency=args.concurrency, check_only=args.check, **options)
        result["requests"] = client.stats
    except engine.TransferError as exc:
        sys.stderr.write("error: %s\n" % exc)
        return 1
    sys.stdout.write(
        (json.dumps(result, sort_keys=True) if args.json else "\n".join("%s: %s" % kv for kv in sorted(result.items())))
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
