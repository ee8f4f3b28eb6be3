# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Cloudflare emulator handlers: GET /zones and /zones/{zone_id}/dns_records (list, create, get, PUT, PATCH,
delete), following tests/support/cloudflare_specs/cloudflare-dns-records.json, in particular
``summary.community_general_cloudflare_dns.emulator_requirements`` and ``summary.emulator_notes``:
200 for create/update/delete, comment (null) and tags ([]) on every record, result_info with total_pages, the
same-name rules with codes 81053/81054/81056/81058, type changes refused (deprecated since 2026-06-30).
"""

from __future__ import annotations

import ipaddress
import re

from tests.support.cloudflare_api import ApiError, check_body, envelope_ok, first, paginate, public, stamp

PROXIABLE = ("A", "AAAA", "CNAME")
STRUCTURED = ("SRV", "CAA", "DS", "SSHFP", "TLSA", "CERT", "DNSKEY", "HTTPS", "LOC", "NAPTR", "SMIMEA", "SVCB", "URI")
WITH_PRIORITY = ("MX", "URI")
TAG = re.compile(r"^[A-Za-z0-9_-]+:.*$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9-]{1,63}\.?$")


def _dns_error(code: int, message: str, pointer: str | None = None) -> ApiError:
    return ApiError(400, code, message, pointer)


# --- zones ----------------------------------------------------------------------------------------------------
def _zone(state) -> dict:
    return {
        "id": state.zone_id,
        "name": state.zone_name,
        "status": "active",
        "paused": False,
        "type": "full",
        "development_mode": 0,
        "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
        "original_name_servers": None,
        "original_registrar": None,
        "original_dnshost": None,
        "owner": {"id": state.account_id, "type": "organization", "name": "Oceanid (emulated)"},
        "account": {"id": state.account_id, "name": "Oceanid (emulated)"},
        "meta": {"phishing_detected": False, "page_rule_quota": 3},
        "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
        "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "legacy_id": "free"},
        "created_on": state.data["zone_created_on"],
        "modified_on": state.data["zone_created_on"],
        "activated_on": state.data["zone_created_on"],
    }


def _name_filter(value: str, name: str) -> bool:
    operators = {
        "equal": lambda a, b: a.lower() == b.lower(),
        "not_equal": lambda a, b: a.lower() != b.lower(),
        "starts_with": lambda a, b: a.lower().startswith(b.lower()),
        "ends_with": lambda a, b: a.lower().endswith(b.lower()),
        "contains": lambda a, b: b.lower() in a.lower(),
        "starts_with_case_sensitive": lambda a, b: a.startswith(b),
        "ends_with_case_sensitive": lambda a, b: a.endswith(b),
        "contains_case_sensitive": lambda a, b: b in a,
    }
    operator, sep, operand = value.partition(":")
    if sep and operator in operators:
        return operators[operator](name, operand)
    return operators["equal"](name, value)


def list_zones(state, request):
    zones = [_zone(state)]
    query = request.query
    if first(query, "name") is not None:
        zones = [z for z in zones if _name_filter(first(query, "name"), z["name"])]
    if first(query, "status") is not None:
        zones = [z for z in zones if z["status"] == first(query, "status")]
    if first(query, "account.id") is not None:
        zones = [z for z in zones if z["account"]["id"] == first(query, "account.id")]
    chunk, info = paginate(zones, query, 20, 50)
    return 200, envelope_ok(chunk, info)


# --- records --------------------------------------------------------------------------------------------------
def _fqdn(state, name: str) -> str:
    name = name.strip().rstrip(".").lower()
    zone = state.zone_name
    if name in ("@", ""):
        return zone
    if name == zone or name.endswith("." + zone):
        return name
    return f"{name}.{zone}"  # a relative name is made absolute within the zone


def _record(state, request) -> dict:
    record = state.data["dns_records"].get(request.params["dns_record_id"])
    if record is None:
        # choice: code 81044 'Record does not exist.' (the spec gives no code for an unknown record id)
        raise ApiError(404, 81044, "Record does not exist.")
    return record


def _validate(state, fields: dict, own_id: str | None) -> None:
    kind = fields["type"]
    name = fields["name"]
    content = fields.get("content")
    ttl = fields.get("ttl", 1)
    if ttl != 1 and not (60 <= ttl <= 86400):
        raise _dns_error(9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for automatic.", "/ttl")
    if fields.get("proxied") and kind not in PROXIABLE:
        # choice: code 9004 (the spec lists which types are proxiable, not the refusal's code)
        raise _dns_error(9004, f"This record type cannot be proxied: {kind}", "/proxied")
    if kind == "A":
        try:
            ipaddress.IPv4Address(content or "")
        except ValueError:
            raise _dns_error(9005, "Content for A record must be a valid IPv4 address.", "/content") from None
    if kind == "AAAA":
        try:
            ipaddress.IPv6Address(content or "")
        except ValueError:
            # choice: 9006 by analogy with 9005 (the spec quotes only the A message)
            raise _dns_error(9006, "Content for AAAA record must be a valid IPv6 address.", "/content") from None
    if kind == "CNAME":
        target = (content or "").rstrip(".").lower()
        is_ip = True
        try:
            ipaddress.ip_address(target)
        except ValueError:
            is_ip = False
        if not target or is_ip or not HOSTNAME.match(target) or target == name:
            raise _dns_error(9007, "Content for CNAME record is invalid.", "/content")
    for index, tag in enumerate(fields.get("tags") or []):
        if not isinstance(tag, str) or not TAG.match(tag):
            # choice: code 9301; the docs give the tag format, not the refusal's code
            raise _dns_error(9301, f"Tag {tag!r} must be of the form name:value", f"/tags/{index}")
    if isinstance(fields.get("comment"), str) and ("\n" in fields["comment"] or "\r" in fields["comment"]):
        raise _dns_error(9301, "The comment may not contain a newline or carriage return.", "/comment")
    if isinstance(fields.get("data"), dict) and kind == "SRV":
        for legacy in ("service", "proto", "name"):
            if legacy in fields["data"]:
                # deprecated 2024-05-31; after end of life the API returns an error when a client sends them
                raise _dns_error(
                    1004, f"SRV data.{legacy} is no longer supported: use the record name", f"/data/{legacy}"
                )
    same_name = [r for r in state.data["dns_records"].values() if r["name"] == name and r["id"] != own_id]
    for other in same_name:
        if other["type"] == kind and _content(other) == _content(fields):
            raise _dns_error(81058, "An identical record already exists.")
    for other in same_name:
        if kind == "CNAME" and other["type"] in ("A", "AAAA", "CNAME"):
            raise _dns_error(81053, "An A, AAAA, or CNAME record with that host already exists.")
        if other["type"] == "CNAME":
            raise _dns_error(
                81054,
                "A CNAME record with that host already exists. For more details, refer to "
                "<https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>.",
            )
        if kind == "NS" and other["type"] != "NS" or other["type"] == "NS" and kind != "NS":
            raise _dns_error(81056, "NS records with that host already exist.")


def _content(fields: dict):
    if fields.get("data") is not None and fields["type"] in STRUCTURED:
        return repr(sorted(fields["data"].items()))
    content = fields.get("content") or ""
    return content.rstrip(".").lower() if fields["type"] in ("CNAME", "NS", "MX") else content


def _fields(state, body: dict) -> dict:
    fields = {
        k: v
        for k, v in body.items()
        if k
        not in (
            "id",
            "zone_id",
            "zone_name",
            "locked",
            "meta",
            "created_on",
            "modified_on",
            "proxiable",
            "comment_modified_on",
            "tags_modified_on",
        )
    }
    fields["name"] = _fqdn(state, body["name"])
    fields.setdefault("ttl", 1)
    if fields["type"] in ("CNAME", "NS", "MX") and isinstance(fields.get("content"), str):
        fields["content"] = fields["content"].rstrip(".")
    return fields


def _view(record: dict) -> dict:
    return public(record)


def _write(state, fields: dict, previous: dict | None) -> dict:
    moment = stamp()
    kind = fields["type"]
    record = {
        "id": previous["id"] if previous else state.new_hex(16),
        "type": kind,
        "name": fields["name"],
        "content": fields.get("content", ""),
        "proxiable": kind in PROXIABLE,
        "proxied": bool(fields.get("proxied", False)) if kind in PROXIABLE else False,
        "ttl": fields.get("ttl", 1),
        "settings": fields.get("settings", {}),
        "meta": {},
        "comment": fields.get("comment"),
        "tags": list(fields.get("tags") or []),
        "created_on": previous["created_on"] if previous else moment,
        "modified_on": moment,
    }
    if record["proxied"]:
        record["ttl"] = 1  # choice: proxied records are always TTL Auto; another ttl is coerced, not refused
    if kind in WITH_PRIORITY and "priority" in fields:
        record["priority"] = fields["priority"]
    if kind in STRUCTURED and fields.get("data") is not None:
        record["data"] = fields["data"]
        record["content"] = "\t".join(str(v) for v in fields["data"].values())
    if record["comment"] is not None:
        keep = previous and previous.get("comment") == record["comment"] and previous.get("comment_modified_on")
        record["comment_modified_on"] = keep or moment
    if record["tags"]:
        keep = previous and previous.get("tags") == record["tags"] and previous.get("tags_modified_on")
        record["tags_modified_on"] = keep or moment
    state.data["dns_records"][record["id"]] = record
    return record


def _match(record: dict, name: str, value: str) -> bool | None:
    """One list filter; None when ``name`` is not a record filter."""
    for field in ("name", "content", "comment"):
        for suffix, test in (
            ("", lambda a, b: a.lower() == b.lower()),
            (".exact", lambda a, b: a.lower() == b.lower()),
            (".contains", lambda a, b: b.lower() in a.lower()),
            (".startswith", lambda a, b: a.lower().startswith(b.lower())),
            (".endswith", lambda a, b: a.lower().endswith(b.lower())),
        ):
            if name == field + suffix:
                actual = record.get(field)
                if actual is None:
                    return False
                wanted = value.rstrip(".") if field == "name" else value
                return test(str(actual), wanted)
    if name == "comment.present":
        return record.get("comment") is not None
    if name == "comment.absent":
        return record.get("comment") is None
    if name == "type":
        return record["type"] == value.upper()
    if name == "proxied":
        return record["proxied"] == (value.lower() == "true")
    if name in ("tag", "tag.exact"):
        return value.lower() in [t.lower() for t in record["tags"]]
    if name == "tag.present":
        return any(t.split(":", 1)[0].lower() == value.lower() for t in record["tags"])
    if name == "tag.absent":
        return not any(t.split(":", 1)[0].lower() == value.lower() for t in record["tags"])
    for suffix, test in (
        (".contains", lambda a, b: b in a),
        (".startswith", str.startswith),
        (".endswith", str.endswith),
    ):
        if name == "tag" + suffix:
            tag_name, _colon, tag_value = value.lower().partition(":")
            return any(
                t.split(":", 1)[0].lower() == tag_name and test(t.partition(":")[2].lower(), tag_value)
                for t in record["tags"]
            )
    return None


def list_records(state, request):
    query = request.query
    match_any = str(first(query, "match") or "all").lower() == "any"
    records = []
    for record in state.data["dns_records"].values():
        results = []
        for name, values in query.items():
            for value in values if isinstance(values, list) else [values]:
                result = _match(record, name, value)
                if result is not None:
                    results.append(result)
        if not results or (any(results) if match_any else all(results)):
            records.append(record)
    order = first(query, "order") or "type"  # choice: default order by type then name
    reverse = str(first(query, "direction") or "asc").lower() == "desc"
    records.sort(key=lambda r: (str(r.get(order, "")), r["name"], r["content"]), reverse=reverse)
    chunk, info = paginate(records, query, 100, 5000000)
    return 200, envelope_ok([_view(r) for r in chunk], info)


def create_record(state, request):
    fields = _fields(state, request.body)
    _validate(state, fields, None)
    return 200, envelope_ok(_view(_write(state, fields, None)))


def get_record(state, request):
    return 200, envelope_ok(_view(_record(state, request)))


def _type_change(previous: dict, fields: dict) -> None:
    if fields["type"] != previous["type"]:
        # deprecated 2026-01-23, unsupported after 2026-06-30. choice: code 9000 (the spec gives none)
        raise _dns_error(
            9000, "Changing the type of an existing DNS record is not supported; delete and create it.", "/type"
        )


def put_record(state, request):
    previous = _record(state, request)
    fields = _fields(state, request.body)  # overwrite: the record becomes the body (schema defaults for the rest)
    _type_change(previous, fields)
    _validate(state, fields, previous["id"])
    return 200, envelope_ok(_view(_write(state, fields, previous)))


def patch_record(state, request):
    previous = _record(state, request)
    merged = {
        k: v
        for k, v in previous.items()
        if k in ("type", "name", "content", "proxied", "ttl", "comment", "tags", "priority", "data", "settings")
    }
    merged.update(request.body)
    if merged.get("data") is None:
        merged.pop("data", None)
    if merged.get("priority") is None:
        merged.pop("priority", None)
    check_body(request.operation, merged)
    fields = _fields(state, merged)
    _type_change(previous, fields)
    _validate(state, fields, previous["id"])
    return 200, envelope_ok(_view(_write(state, fields, previous)))


def delete_record(state, request):
    record = _record(state, request)
    del state.data["dns_records"][record["id"]]
    return 200, envelope_ok({"id": record["id"]})


def seed_record(state, **fields) -> dict:
    """Test helper: put a record in place without going through the API (e.g. one made by hand earlier)."""
    fields = _fields(state, fields)
    _validate(state, fields, None)
    return _view(_write(state, fields, None))


HANDLERS = {
    "zones-get": list_zones,
    "dns-records-for-a-zone-list-dns-records": list_records,
    "dns-records-for-a-zone-create-dns-record": create_record,
    "dns-records-for-a-zone-dns-record-details": get_record,
    "dns-records-for-a-zone-update-dns-record": put_record,
    "dns-records-for-a-zone-patch-dns-record": patch_record,
    "dns-records-for-a-zone-delete-dns-record": delete_record,
}
