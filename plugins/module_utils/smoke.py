# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The smoke report's records and table, and the inputs of a smoke inference, standard library only.

Shared by the oceanid.fleet.smoke_report, triton_infer_check and s3_roundtrip_check modules (playbooks/smoke.yml).
A record is ``{layer, check, host, status, detail}`` with ``status`` one of ``ok``, ``failed``, ``not run``:
``detail`` says what was checked and the value seen, on failure why, and for ``not run`` the reason.
"""

import json
import os
import tempfile

OK = "ok"
FAILED = "failed"
NOT_RUN = "not run"
STATUSES = (OK, FAILED, NOT_RUN)
FIELDS = ("layer", "check", "host", "status", "detail")
REPORT_FORMAT = 1

# Triton datatypes (KServe v2) and the numpy dtype names that hold them.
NUMPY_DTYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}


class SmokeError(Exception):
    """Input that cannot make a valid record or request; the message says which and why."""


def record(layer, check, host, status, detail):
    """One check's record, validated."""
    if status not in STATUSES:
        raise SmokeError(
            "status %r of %s/%s on %s is not one of %s" % (status, layer, check, host, ", ".join(STATUSES))
        )
    return {"layer": str(layer), "check": str(check), "host": str(host), "status": status, "detail": str(detail)}


def normalize(records):
    """The records as validated dicts; raises SmokeError naming the first bad one."""
    out = []
    for index, item in enumerate(records or []):
        if not isinstance(item, dict):
            raise SmokeError("record %d is a %s, not a dict" % (index, type(item).__name__))
        missing = [name for name in FIELDS if name not in item]
        if missing:
            raise SmokeError("record %d (%r) lacks %s" % (index, item.get("check"), ", ".join(missing)))
        if item["status"] == NOT_RUN and not str(item["detail"]).strip():
            raise SmokeError(
                "record %d (%s/%s on %s) is not run without a reason"
                % (index, item["layer"], item["check"], item["host"])
            )
        out.append(record(*(item[name] for name in FIELDS)))
    return out


def counts(records):
    """How many records have each status."""
    result = dict.fromkeys(STATUSES, 0)
    for item in records:
        result[item["status"]] += 1
    return result


def failed(records):
    return [item for item in records if item["status"] == FAILED]


def label(item):
    """``layer/check on host``: how a message names a check."""
    return "%s/%s on %s" % (item["layer"], item["check"], item["host"])


def report(records, generated, inventory=""):
    """The JSON document: format version, when, which inventory, the counts, ``ok`` and the records."""
    return {
        "format": REPORT_FORMAT,
        "generated": generated,
        "inventory": inventory,
        "ok": not failed(records),
        "counts": counts(records),
        "checks": records,
    }


def write_atomically(path, document):
    """Write ``document`` as JSON to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    handle, tmp = tempfile.mkstemp(prefix=".smoke-report.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(document, stream, indent=2, sort_keys=False)
            stream.write("\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _cell(value, width):
    text = " ".join(str(value).split())
    if width and len(text) > width:
        return text[: width - 3] + "..."
    return text


def table(records, detail_width=100):
    """The records as text lines: a header, a rule and one line per record (layer | check | host | status | detail)."""
    rows = [[_cell(item[name], detail_width if name == "detail" else 0) for name in FIELDS] for item in records]
    widths = [max([len(name)] + [len(row[column]) for row in rows]) for column, name in enumerate(FIELDS)]
    widths[-1] = len(FIELDS[-1]) if not rows else widths[-1]

    def line(cells):
        return " | ".join(cell.ljust(widths[column]) for column, cell in enumerate(cells)).rstrip()

    return [line(FIELDS), "-+-".join("-" * width for width in widths)] + [line(row) for row in rows]


# --------------------------------------------------------------------------------------------------
# Inputs of a smoke inference, from a model's metadata (datatype, shape) and optional sample values
# --------------------------------------------------------------------------------------------------


def resolve_shape(shape):
    """A concrete shape: every variable dimension (-1) becomes 1.

    Triton's model metadata already shows a batching model's batch dimension as a leading -1, so this gives
    a batch of one.
    """
    return [1 if int(dim) < 0 else int(dim) for dim in shape]


def _size(shape):
    size = 1
    for dim in shape:
        size *= dim
    return size


def _flatten(value):
    if isinstance(value, (list, tuple)):
        out = []
        for item in value:
            out.extend(_flatten(item))
        return out
    return [value]


def plan_inputs(model, inputs, samples=None, optional=None):
    """What to send: ``[{name, datatype, shape, values}]`` with ``values`` flat, in row-major order.

    ``inputs`` is the model metadata's list of ``{name, datatype, shape}``; ``samples`` maps input names to a
    value (a scalar, or a nested list) that is repeated or reshaped to the input's shape; an input without a
    sample gets zeros (numbers), false (BOOL) or ``"oceanid-smoke"`` (BYTES). ``optional`` names inputs that
    may be left out; they are sent only when a sample is given. Raises SmokeError for a sample that does not fit.
    """
    samples = samples or {}
    optional = set(optional or [])
    known = {item["name"] for item in inputs}
    unknown = sorted(set(samples) - known)
    if unknown:
        raise SmokeError(
            "%s: sample input(s) %s are not inputs of the model (it has %s)"
            % (model, ", ".join(unknown), ", ".join(sorted(known)) or "none")
        )
    plan = []
    for item in inputs:
        name, datatype = item["name"], item["datatype"]
        if datatype not in NUMPY_DTYPES:
            raise SmokeError(
                "%s: input %s has datatype %s, which the smoke check cannot build" % (model, name, datatype)
            )
        if name not in samples and name in optional:
            continue
        shape = resolve_shape(item.get("shape", []))
        size = _size(shape)
        if name in samples:
            values = _flatten(samples[name])
            if len(values) == 1 and size != 1:
                values = values * size
            if len(values) != size:
                raise SmokeError(
                    "%s: the sample of input %s has %d value(s); its shape %s needs %d"
                    % (model, name, len(values), shape, size)
                )
        elif datatype == "BYTES":
            values = ["oceanid-smoke"] * size
        elif datatype == "BOOL":
            values = [False] * size
        else:
            values = [0] * size
        plan.append({"name": name, "datatype": datatype, "shape": shape, "values": values})
    return plan


def describe_output(name, datatype, shape, values, limit=60):
    """``name datatype[shape] = preview`` of one output, the preview cut to ``limit`` characters."""
    flat = _flatten(values)
    shown = []
    for value in flat[:8]:
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, float):
            value = round(value, 4)
        shown.append(value)
    preview = json.dumps(shown if len(flat) != 1 else shown[0], default=str)
    if len(preview) > limit:
        preview = preview[: limit - 3] + "..."
    return "%s %s%s = %s" % (name, datatype, list(shape), preview)


def expectation_problems(expect, outputs):
    """For ``expect`` ({output name: text that must occur in it}): what is missing, as messages."""
    problems = []
    for name, needle in sorted((expect or {}).items()):
        if name not in outputs:
            problems.append("output %s is missing" % name)
            continue
        text = " ".join(
            value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            for value in _flatten(outputs[name])
        )
        if str(needle) not in text:
            problems.append("output %s does not contain %r" % (name, needle))
    return problems
