"""Send inferences to a model until a stop file appears; report failures and the outputs seen.

Usage: infer_loop.py URL MODEL STOP_FILE MAX_SECONDS   (prints one JSON object)
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request


def main():
    url, model, stop_file, max_seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    body = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [1], "data": [1.0]}]}).encode()
    deadline, sent, failures, outputs = time.monotonic() + max_seconds, 0, [], []
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        sent += 1
        try:
            request = urllib.request.Request("%s/v2/models/%s/infer" % (url, model), data=body, method="POST")
            with urllib.request.urlopen(request, timeout=10) as response:
                value = json.load(response)["outputs"][0]["data"][0]
            if not outputs or outputs[-1] != value:
                outputs.append(value)
        except (OSError, ValueError, KeyError) as err:
            detail = err.read().decode(errors="replace") if isinstance(err, urllib.error.HTTPError) else str(err)
            failures.append({"at": time.time(), "error": detail[:300]})
        time.sleep(0.02)
    print(json.dumps({"sent": sent, "failures": failures, "outputs": outputs, "stopped": os.path.exists(stop_file)}))


if __name__ == "__main__":
    main()
