"""Poll Triton's repository index until a stop file appears; report every moment a watched model was not READY.

Usage: watch_models.py URL STOP_FILE MAX_SECONDS MODEL [MODEL...]   (prints one JSON object)
"""

import json
import os
import sys
import time
import urllib.request


def ready_models(url):
    request = urllib.request.Request(url + "/v2/repository/index", data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return {entry["name"] for entry in json.load(response) if entry.get("state") == "READY"}


def main():
    url, stop_file, max_seconds, models = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
    deadline = time.monotonic() + max_seconds
    polls, gaps = 0, []
    while not os.path.exists(stop_file) and time.monotonic() < deadline:
        polls += 1
        try:
            missing = sorted(set(models) - ready_models(url))
        except OSError as err:
            missing = ["server unreachable: %s" % err]
        if missing:
            gaps.append({"at": time.time(), "not_ready": missing})
        time.sleep(0.05)
    print(json.dumps({"polls": polls, "gaps": gaps, "stopped": os.path.exists(stop_file)}))


if __name__ == "__main__":
    main()
