# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How requested models stand in Triton's repository index, and waiting until they are READY.

Shared by oceanid.fleet.triton_model_ready and the model puller, standard library only. It reads the
server through ``triton.TritonClient`` (the HTTP client, in ``triton.py`` beside this file). A requested
model is a dict ``{"name", "version" (a string or None), "config" (a dict or None)}``; model_request()
builds one. assess() turns the index into rows (one per version) and a status:

* "ready": READY (the version asked for, or any version);
* "waiting": LOADING, UNLOADING, on disk but never loaded, ...: may still become ready;
* "failed": a load failed (UNAVAILABLE with Triton's reason);
* "absent": not in the repository index at all, or a version the index does not list for a model
  that has versions listed. Whether that is final is the caller's choice (ModelWaiter's absent_model).

ModelWaiter polls one server until requested models are READY; WaitFailed says why they are not.
"""

import time

try:
    from .triton import LOADING, READY, REASON_UNLOADED, UNAVAILABLE, UNLOADING, TritonError
except ImportError:  # plain modules beside the model puller, not in a package
    from triton import LOADING, READY, REASON_UNLOADED, UNAVAILABLE, UNLOADING, TritonError


NOT_IN_INDEX = "not in the repository index"
NOT_LOADED = "not loaded"
STATUS_READY = "ready"
STATUS_WAITING = "waiting"
STATUS_FAILED = "failed"
STATUS_ABSENT = "absent"

# A failure (or absence) seen while only waiting must persist this long, over two polls, before a
# ModelWaiter gives up: another client may just be reloading that model.
FAILURE_GRACE = 1.0
# Per-request timeout cap while polling (a load request may use all the remaining time).
POLL_REQUEST_TIMEOUT = 10.0


def model_request(name, version=None, config=None):
    """A requested model as assess() and ModelWaiter take it (version as Triton's string, or None)."""
    return {"name": name, "version": None if version is None else str(version), "config": config}


def index_entries(index, name):
    """(all entries of a model, those with a state)."""
    entries = [entry for entry in index if entry.get("name") == name]
    return entries, [entry for entry in entries if entry.get("state")]


def version_row(name, entry=None, version=None, reason=""):
    """One row of a result: name, version, state, reason, ready (from an index entry, or a placeholder)."""
    if entry is None:
        return {"name": name, "version": version, "state": None, "reason": reason, "ready": False}
    version = entry.get("version")
    return {
        "name": name,
        "version": None if version is None else str(version),
        "state": entry.get("state"),
        "reason": entry.get("reason") or "",
        "ready": entry.get("state") == READY,
    }


def is_failure(row):
    """UNAVAILABLE with a reason other than an unload on request: a load that failed."""
    return row["state"] == UNAVAILABLE and bool(row["reason"]) and row["reason"] != REASON_UNLOADED


def label(row, with_version=True):
    if with_version and row["version"] is not None:
        return "%s version %s" % (row["name"], row["version"])
    return row["name"]


def describe(row):
    """'name[ version v]: STATE[: reason]' or 'name: reason'."""
    if row["state"] is None:
        return "%s: %s" % (label(row), row["reason"])
    if row["reason"]:
        return "%s: %s: %s" % (label(row), row["state"], row["reason"])
    return "%s: %s" % (label(row), row["state"])


def _assessment(rows, status, problems):
    return {"rows": rows, "status": status, "problems": problems}


def assess(model, index, strict_versions=False):
    """How one requested model stands in the index.

    Returns a dict: rows (per version), status (see above), problems (texts for messages).
    strict_versions (all_models): every version must be READY, except versions unloaded on request.
    """
    name, version = model["name"], model["version"]
    entries, versioned = index_entries(index, name)
    if version is not None:
        match = [entry for entry in versioned if str(entry.get("version")) == version]
        if match:
            row = version_row(name, match[0])
            if row["ready"]:
                return _assessment([row], STATUS_READY, [])
            return _assessment([row], STATUS_FAILED if is_failure(row) else STATUS_WAITING, [describe(row)])
        if versioned:
            present = ", ".join("%s %s" % (entry.get("version"), entry.get("state")) for entry in versioned)
            row = version_row(name, version=version, reason="%s (versions listed: %s)" % (NOT_IN_INDEX, present))
            return _assessment([row], STATUS_ABSENT, [describe(row)])
        row = version_row(name, version=version, reason=NOT_LOADED if entries else NOT_IN_INDEX)
        return _assessment([row], STATUS_WAITING if entries else STATUS_ABSENT, [describe(row)])
    if not versioned:
        if not entries:
            row = version_row(name, reason=NOT_IN_INDEX)
            return _assessment([row], STATUS_ABSENT, [describe(row)])
        problem = (
            "%s: present in the repository but not loaded (in explicit model-control mode, state=loaded "
            "loads it; in none or poll mode, Triton could not read the model directory, for example a "
            "config.pbtxt it cannot parse: see the server log)" % name
        )
        return _assessment([version_row(name, reason=NOT_LOADED)], STATUS_WAITING, [problem])
    rows = [version_row(name, entry) for entry in versioned]
    failures = [row for row in rows if is_failure(row)]
    transitional = [row for row in rows if row["state"] in (LOADING, UNLOADING)]
    if strict_versions:
        pending = [row for row in rows if not row["ready"] and row["reason"] != REASON_UNLOADED]
        ready = not pending and any(row["ready"] for row in rows)
    else:
        pending = [row for row in rows if not row["ready"]]
        ready = any(row["ready"] for row in rows)
    if ready:
        return _assessment(rows, STATUS_READY, [])
    status = STATUS_FAILED if failures and not transitional else STATUS_WAITING
    return _assessment(rows, status, [describe(row) for row in (pending or rows)])


def all_models_in(index):
    """The models the server tried to load: a versioned entry, not every version unloaded on request."""
    names = []
    for entry in index:
        name = entry.get("name")
        if name in names or not entry.get("state"):
            continue
        rows = [version_row(name, e) for e in index_entries(index, name)[1]]
        if all(row["state"] == UNAVAILABLE and row["reason"] == REASON_UNLOADED for row in rows):
            continue
        names.append(name)
    return [model_request(name) for name in sorted(names)]


def serving_rows(name, index):
    """The READY rows of a model, whatever version."""
    return [row for row in assess(model_request(name), index)["rows"] if row["ready"]]


def summary(model, index):
    """One line per model for diff output."""
    rows = assess(model, index)["rows"]
    if len(rows) == 1 and rows[0]["state"] is None:
        return rows[0]["reason"]
    return ", ".join(
        "version %s %s%s" % (row["version"], row["state"], ": " + row["reason"] if row["reason"] else "")
        for row in rows
    )


def config_matches(wanted, served):
    """Every key of a config override has the served value (lists element by element; scalars as text)."""
    if isinstance(wanted, dict):
        return isinstance(served, dict) and all(
            key in served and config_matches(value, served[key]) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(served, list)
            and len(wanted) == len(served)
            and all(config_matches(w, s) for w, s in zip(wanted, served))
        )
    return _scalar(wanted) == _scalar(served)


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- waiting for models ----------------------------------------------------------------------------------


class WaitFailed(Exception):
    """A ModelWaiter gave up: a model failed, is absent (absent_model='fail'), or the deadline passed."""


class ModelWaiter:
    """Polls one server's repository index until requested models are READY, or says why they are not.

    ``timeout`` counts from ``started`` (a time.monotonic() value; default now). ``absent_model``:
    'fail' (a model or version the index does not list fails once that holds for FAILURE_GRACE seconds,
    or at once after load requests returned) or 'wait' (it may still appear, e.g. a server in poll mode
    or a model directory still being copied); ``absent_hint`` is added to the message of that failure.
    ``rows`` holds the last assessment, one row per version.
    """

    def __init__(
        self, client, timeout, interval=0.1, started=None, absent_model="fail", strict_versions=False, absent_hint=""
    ):
        self.client = client
        self.url = client.url
        self.timeout = timeout
        self.interval = interval
        self.started = time.monotonic() if started is None else started
        self.deadline = self.started + timeout
        self.absent_model = absent_model
        self.strict_versions = strict_versions
        self.absent_hint = absent_hint
        self.live_seen = False
        self.last_error = None
        self.failing_since = {}
        self.rows = []

    # -- plumbing ------------------------------------------------------------------------------------

    def remaining(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return round(time.monotonic() - self.started, 3)

    def request_timeout(self, cap=POLL_REQUEST_TIMEOUT):
        return max(min(self.remaining(), cap), 0.5)

    def pause(self):
        delay = min(self.interval, self.remaining())
        if delay > 0:
            time.sleep(delay)

    def poll_index(self, timeout=None):
        """One poll: the index, or None (the reason is kept in last_error)."""
        timeout = self.request_timeout() if timeout is None else timeout
        try:
            if not self.live_seen:
                if not self.client.live(timeout=timeout):
                    self.last_error = TritonError(
                        "server at %s is not live yet (GET /v2/health/live answered 400)" % self.url, status=400
                    )
                    return None
                self.live_seen = True
            index = self.client.index(timeout=timeout)
        except TritonError as exc:
            if exc.unreachable:
                self.live_seen = False
            self.last_error = exc
            return None
        self.last_error = None
        return index

    def server_problem(self):
        exc = self.last_error
        if exc is None:
            return "no answer from the server at %s" % self.url
        if exc.unreachable:
            return "server not reachable at %s: %s" % (self.url, exc.message)
        if exc.status == 400 and "not live" in exc.message:
            return exc.message
        return "server at %s answered %s %s: %s" % (self.url, exc.method or "", exc.url or "", exc)

    def unknown_rows(self, models):
        """Rows for requested models when the index could not be read."""
        exc = self.last_error
        reason = "server not reachable" if exc is None or exc.unreachable else "no repository index: %s" % exc
        return [version_row(m["name"], version=m["version"], reason=reason) for m in models]

    def timed_out(self, what, assessments=None, models=()):
        head = "timed out after %s s %s" % (self.timeout, what)
        if assessments is None:
            self.rows = self.unknown_rows(models)
            return "%s: %s" % (head, self.server_problem())
        problems = [p for a in assessments if a["status"] != STATUS_READY for p in a["problems"]]
        text = "%s; not ready: %s" % (head, "; ".join(problems))
        if self.last_error is not None:
            text += " (last poll: %s)" % self.server_problem()
        return text

    def wait_for_index(self, what, models=()):
        """The index, polling until the server answers; WaitFailed at the deadline."""
        index = self.poll_index()
        while index is None:
            if self.remaining() <= 0:
                raise WaitFailed(self.timed_out(what, models=models))
            self.pause()
            index = self.poll_index()
        return index

    def assess_all(self, index, models):
        return [assess(model, index, strict_versions=self.strict_versions) for model in models]

    # -- waiting -------------------------------------------------------------------------------------

    def confirm_ready(self, models):
        """GET .../ready for each model; None when all are 200, else a text."""
        for model in models:
            try:
                if not self.client.model_ready(model["name"], model["version"], timeout=self.request_timeout()):
                    return "%s: READY in the repository index, but its ready endpoint does not answer 200" % (
                        label(version_row(model["name"], version=model["version"]))
                    )
            except TritonError as exc:
                self.last_error = exc
                if exc.unreachable:
                    self.live_seen = False
                return "%s: %s" % (model["name"], self.server_problem())
        return None

    def _final(self, assessment):
        return assessment["status"] == STATUS_FAILED or (
            assessment["status"] == STATUS_ABSENT and self.absent_model == "fail"
        )

    def stable_failures(self, assessments):
        """Final-looking models that stayed so for two polls and FAILURE_GRACE seconds."""
        now = time.monotonic()
        stable = []
        failing = {}
        for assessment in assessments:
            if not self._final(assessment):
                continue
            key = (assessment["rows"][0]["name"], tuple(assessment["problems"]))
            first, count = self.failing_since.get(key, (now, 0))
            failing[key] = (first, count + 1)
            if count + 1 >= 2 and now - first >= FAILURE_GRACE:
                stable.append(assessment)
        self.failing_since = failing
        return stable

    def failure_message(self, assessments, failed, settled_is_final=False):
        problems = [p for a in assessments if a["status"] != STATUS_READY for p in a["problems"]]
        if any(a["status"] == STATUS_FAILED for a in failed):
            verb = "failed to load"
        elif not settled_is_final and all(a["status"] == STATUS_ABSENT for a in failed):
            verb = "not in the repository index"
        else:
            verb = "will not become ready"
        text = "%s %s on %s: %s" % ("model" if len(problems) == 1 else "models", verb, self.url, "; ".join(problems))
        if verb == "not in the repository index":
            text += self.absent_hint
        return text

    def wait_ready(self, models, what, settled_is_final=False, index=None):
        """Poll until every model is ready; WaitFailed on a final state or at the deadline.

        ``models`` None: every model the server tried to load (all_models_in, read again each poll).
        settled_is_final (after load requests returned): a model that is not ready and not loading or
        unloading will not become ready by waiting, so it fails at once. Returns (index, models).
        """
        every = models is None
        assessments = None
        while True:
            if index is None:
                index = self.poll_index()
            if index is not None:
                if every:
                    models = all_models_in(index)
                assessments = self.assess_all(index, models)
                self.rows = [row for a in assessments for row in a["rows"]]
                if all(a["status"] == STATUS_READY for a in assessments):
                    problem = self.confirm_ready(models)
                    if problem is None:
                        return index, models
                    self.last_error = TritonError(problem)
                if settled_is_final:
                    failed = [
                        a
                        for a in assessments
                        if a["status"] != STATUS_READY
                        and not any(row["state"] in (LOADING, UNLOADING) for row in a["rows"])
                    ]
                else:
                    failed = self.stable_failures(assessments)
                if failed:
                    raise WaitFailed(self.failure_message(assessments, failed, settled_is_final))
            if self.remaining() <= 0:
                raise WaitFailed(self.timed_out(what, assessments, models=models or ()))
            self.pause()
            index = None
