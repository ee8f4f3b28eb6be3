# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What ls-triton-adapter adds to a prediction's latency, against calling Triton directly on the same PDF.

A real tritonserver (2.51, nvidia-pytriton wheel, CPU, Python backend) serves docling_granite_python (one instance,
as deployed); the adapter (roles/ls_triton_adapter/files/ls_triton_adapter.py) runs as a subprocess on loopback on
this venv's Python. The same generated PDF is sent, one request at a time, ``--requests`` times each way:

* ``direct``: tritonclient.http straight to Triton (one client, kept: what a well-written caller does);
* ``seed``: the adapter's direct form, ``POST /predict {"model", "pdf_base64", "prompt"}``;
* ``ls``: the Label Studio form, ``POST /predict {"tasks": [{"data": {"pdf": "data:application/pdf;base64,..."}}],
  "label_config": ...}``.

The three ways take turns within each round (the order rotates), so a drift of the machine hits them alike; a
warm-up of ``--warmup`` rounds is not counted. Requests to the adapter use http.client with a new connection each
(the adapter closes connections after each answer), so its column includes a loopback connect. Prints median and
p95 of each and the adapter's added latency (adapter minus direct) at the median and at p95. Needs root (see
tests/support/tritonserver.py).

Run from the repository root:  .venv/bin/python benchmarks/adapter/run.py [--requests 200] [--pages 2]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.integration.ls_triton_adapter.adapter_helpers import MODEL, AdapterProcess, serve_docling  # noqa: E402
from tests.support import tritonserver  # noqa: E402
from tests.support.pdf import make_pdf  # noqa: E402

LABEL_CONFIG = '<View><Text name="text" value="$text"/><TextArea name="extracted_text" toName="text"/></View>'


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200, help="counted requests per way (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted rounds first (default 20)")
    parser.add_argument("--pages", type=int, default=2, help="pages of the generated PDF (default 2)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON too")
    args = parser.parse_args()
    if os.geteuid() != 0 or not tritonserver.available():
        raise SystemExit("needs root and the nvidia-pytriton wheel in this venv (see tests/support/tritonserver.py)")

    import numpy as np
    import tritonclient.http as httpclient

    pdf = make_pdf([f"Page {index + 1}: MV Ocean Star, IMO 9123456, flag Panama" for index in range(args.pages)])
    pdf64 = base64.b64encode(pdf).decode("ascii")
    seed_body = json.dumps({"model": MODEL, "pdf_base64": pdf64, "prompt": "Extract vessel summary"}).encode()
    ls_body = json.dumps(
        {
            "tasks": [{"id": 1, "data": {"pdf": "data:application/pdf;base64," + pdf64}}],
            "label_config": LABEL_CONFIG,
            "project": "1.1764800000",
        }
    ).encode()

    with tempfile.TemporaryDirectory(prefix="oceanid-adapter-bench-") as tmp:
        root = Path(tmp)
        server = serve_docling(root)
        adapter = None
        try:
            adapter = AdapterProcess(root, server.url, LS_TRITON_ADAPTER_LOG_LEVEL="WARNING")
            port = adapter.port
            client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))

            def direct() -> str:
                pdf_input = httpclient.InferInput("pdf_base64", [1], "BYTES")
                pdf_input.set_data_from_numpy(np.array([pdf64.encode("ascii")], dtype=np.object_))
                prompt = httpclient.InferInput("prompt", [1], "BYTES")
                prompt.set_data_from_numpy(np.array([b"Extract vessel summary"], dtype=np.object_))
                result = client.infer(
                    MODEL, [pdf_input, prompt], outputs=[httpclient.InferRequestedOutput("result", binary_data=True)]
                )
                return json.loads(result.as_numpy("result")[0])["text"]

            def through_adapter(body: bytes, ls: bool) -> str:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                answer = json.loads(response.read())
                conn.close()
                if response.status != 200:
                    raise SystemExit(f"adapter answered {response.status}: {answer}")
                return answer["results"][0]["result"][0]["value"]["text"][0] if ls else answer["text"]

            ways = {
                "direct": direct,
                "seed": lambda: through_adapter(seed_body, False),
                "ls": lambda: through_adapter(ls_body, True),
            }
            expected = direct()
            times: dict[str, list[float]] = {name: [] for name in ways}
            names = list(ways)
            for round_index in range(args.warmup + args.requests):
                order = names[round_index % 3 :] + names[: round_index % 3]
                for name in order:
                    started = time.perf_counter()
                    text = ways[name]()
                    elapsed = time.perf_counter() - started
                    if text != expected:
                        raise SystemExit(f"{name}: unexpected text {text!r}")
                    if round_index >= args.warmup:
                        times[name].append(elapsed * 1000)
            client.close()
        finally:
            if adapter is not None:
                adapter.stop()
            server.stop()

    summary = {
        name: {"median_ms": statistics.median(values), "p95_ms": percentile(values, 0.95)}
        for name, values in times.items()
    }
    print(f"PDF: {len(pdf)} bytes, {args.pages} pages ({len(pdf64)} base64 characters); {args.requests} requests each")
    print(f"{'way':<8} {'median':>10} {'p95':>10} {'added (median)':>16} {'added (p95)':>13}")
    for name, row in summary.items():
        added = ""
        if name != "direct":
            row["added_median_ms"] = row["median_ms"] - summary["direct"]["median_ms"]
            row["added_p95_ms"] = row["p95_ms"] - summary["direct"]["p95_ms"]
            added = f"{row['added_median_ms']:>13.2f} ms {row['added_p95_ms']:>10.2f} ms"
        print(f"{name:<8} {row['median_ms']:>7.2f} ms {row['p95_ms']:>7.2f} ms {added}")
    worst = max(summary["seed"]["added_median_ms"], summary["ls"]["added_median_ms"])
    print(f"target: under 10 ms added at the median: {'met' if worst < 10 else 'NOT met'} ({worst:.2f} ms)")
    if args.json:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
