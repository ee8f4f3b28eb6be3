# One read-only look at the labelfish database, run by tasks/state.yml as `python3 -c` on labelfish_db_delegate_to
# (as the postgres OS user with the server installed there). Reads a JSON request on stdin (it carries the
# passwords, so they are never on a command line) and prints one JSON object that holds no password or verifier:
#   ok, error          whether the admin could log in to the database (when not, the role runs every task)
#   database, roles, schemas, extensions: what the create/grant/revoke tasks compare
#   grants_missing, default_privs_missing: per grant asked for, whether the module would grant something
#   hba_missing        the client networks whose pg_hba.conf rule is not exactly the one the role writes
#   logins             per role, "ok" or the server's words, logging in as the application would
# A role's password is "same" only when its stored SCRAM verifier's ServerKey is the one the password gives: the
# comparison community.postgresql.postgresql_user makes; anything else is "differs" or "unknown".
import base64
import hashlib
import hmac
import json
import re
import sys

try:
    import psycopg2 as pg
except ImportError:  # psycopg 3 takes the same keyword arguments
    import psycopg as pg

SCRAM = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")


def password_state(password, verifier):
    match = SCRAM.match(verifier or "")
    if not match:  # no password, or not a SCRAM verifier: the module sets it
        return "differs"
    if not all(" " <= ch <= "~" for ch in password):  # printable ASCII is its own SASLprep; the rest is the module's
        return "unknown"
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(match.group(2)), int(match.group(1)))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return "same" if hmac.compare_digest(server_key, base64.b64decode(match.group(4))) else "differs"


def hba_missing(hba):
    """The client networks that lack a rule as postgresql_pg_hba writes it: one line per database, user and network."""
    if not hba.get("path"):
        return []
    with open(hba["path"], encoding="utf-8") as handle:
        rules = [line.split("#", 1)[0].split() for line in handle]
    missing = []
    for cidr in hba["cidrs"]:
        address = cidr.split("/", 1)[0]
        for user in hba["users"]:
            same_key = [
                r for r in rules if r[:3] == ["host", hba["db"], user] and len(r) > 3 and r[3] in (cidr, address)
            ]
            if same_key != [["host", hba["db"], user, cidr, hba["method"]]] and cidr not in missing:
                missing.append(cidr)
    return missing


def acl(rows, owner):
    """{grantee: [privileges granted by the owner]} and {grantee: [privileges from any grantor]}."""
    by_owner, any_grantor = {}, {}
    for grantee, grantor, privilege in rows:
        any_grantor.setdefault(grantee, []).append(privilege)
        if grantor == owner:
            by_owner.setdefault(grantee, []).append(privilege)
    return {"by_owner": by_owner, "any": any_grantor}


EXPLODE = "coalesce(nullif(a.grantee, 0)::regrole::text, 'PUBLIC'), a.grantor::regrole::text, a.privilege_type"


def look(cur, req):
    out = {}
    cur.execute(
        "SELECT pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding),"
        " coalesce((SELECT setconfig FROM pg_db_role_setting WHERE setrole = 0 AND setdatabase = d.oid), '{}')"
        " FROM pg_database d WHERE d.datname = current_database()"
    )
    owner, encoding, settings = cur.fetchone()
    cur.execute(
        "SELECT " + EXPLODE + " FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a"
        " WHERE d.datname = current_database()"
    )
    out["database"] = {
        "owner": owner,
        "encoding": encoding,
        "settings": list(settings),
        "acl": acl(cur.fetchall(), owner),
    }

    names = [role["name"] for role in req["roles"]]
    readable = True
    try:
        cur.execute("SAVEPOINT authid")
        cur.execute(
            "SELECT r.rolname, r.rolcanlogin, r.rolconfig, a.rolpassword FROM pg_roles r"
            " JOIN pg_authid a ON a.oid = r.oid WHERE r.rolname = ANY(%s)",
            (names,),
        )
    except pg.Error:  # not a superuser: passwords cannot be compared (the module, too, then sets them)
        readable = False
        cur.execute("ROLLBACK TO SAVEPOINT authid")
        cur.execute("SELECT rolname, rolcanlogin, rolconfig, NULL FROM pg_roles WHERE rolname = ANY(%s)", (names,))
    found = {row[0]: row for row in cur.fetchall()}
    out["roles"] = {}
    for role in req["roles"]:
        if role["name"] in found:
            _name, login, config, verifier = found[role["name"]]
            password = password_state(role["password"], verifier) if readable else "unknown"
            # As postgresql_user leaves it: LOGIN, the password, and each setting given (name=value in rolconfig).
            settings = all("%s=%s" % item in (config or []) for item in role["config"].items())
            out["roles"][role["name"]] = {
                "login": login,
                "password": password,
                "as_wanted": login and password == "same" and settings,
            }

    out["schemas"] = {}
    for schema in sorted({req["schema"], "public"}):
        cur.execute("SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = %s", (schema,))
        row = cur.fetchone()
        if row:
            cur.execute(
                "SELECT "
                + EXPLODE
                + " FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a"
                " WHERE n.nspname = %s",
                (schema,),
            )
            out["schemas"][schema] = {"owner": row[0], "acl": acl(cur.fetchall(), row[0])}

    cur.execute("SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace")
    out["extensions"] = dict(cur.fetchall())

    # Each table and sequence of the schema, with the privileges granted on it by its owner ("grantee:PRIVILEGE").
    cur.execute(
        "SELECT c.oid, c.relkind, pg_get_userbyid(c.relowner), " + EXPLODE + " FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))) a"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')",
        (req["schema"],),
    )
    held = {"table": {}, "sequence": {}}
    for oid, kind, rel_owner, grantee, grantor, privilege in cur.fetchall():
        if grantor == rel_owner:
            held["sequence" if kind == "S" else "table"].setdefault(oid, set()).add(grantee + ":" + privilege)
    cur.execute(
        "SELECT c.oid, c.relkind = 'S' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p', 'f', 'S')",
        (req["schema"],),
    )
    oids = {"table": [], "sequence": []}
    for oid, is_sequence in cur.fetchall():
        oids["sequence" if is_sequence else "table"].append(oid)
    # Per grant wanted: whether some relation of its type lacks one of its privileges (none when there is none).
    relations = {"table": [], "sequence": []}
    for kind in ("table", "sequence"):
        relations[kind] = [held[kind].get(oid, set()) for oid in oids[kind]]
    out["grants_missing"] = [
        any(
            not all(grant["role"] + ":" + p in rel for p in grant["privs"].split(","))
            for rel in relations[grant["type"]]
        )
        for grant in req["grants"]
    ]

    cur.execute(
        "SELECT d.defaclobjtype, "
        + EXPLODE
        + " FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace,"
        " aclexplode(d.defaclacl) a WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = %s) AND n.nspname = %s",
        (req["owner"], req["schema"]),
    )
    default_acl = {"TABLES": {}, "SEQUENCES": {}}
    for objtype, grantee, grantor, privilege in cur.fetchall():
        if objtype in ("r", "S") and grantor == req["owner"]:
            default_acl["TABLES" if objtype == "r" else "SEQUENCES"].setdefault(grantee, []).append(privilege)
    out["default_privs_missing"] = [
        not all(p in default_acl[grant["objs"]].get(grant["role"], []) for p in grant["privs"].split(","))
        for grant in req["grants"]
    ]
    return out


def connect(params):
    return pg.connect(**{key: value for key, value in params.items() if value not in ("", None)})


def main():
    req = json.load(sys.stdin)
    out = {"ok": False, "hba_missing": hba_missing(req["hba"])}
    admin = dict(req["admin"], dbname=req["db"], connect_timeout=10)
    try:
        conn = connect(admin)
    except pg.Error as error:
        out["error"] = str(error).strip()
        print(json.dumps(out))
        return
    try:
        with conn.cursor() as cur:
            out.update(look(cur, req))
        conn.rollback()
    finally:
        conn.close()
    out["ok"] = True
    out["logins"] = {}
    for role in req["roles"]:
        try:
            connect(
                dict(req["client"], user=role["name"], password=role["password"], dbname=req["db"], connect_timeout=10)
            ).close()
            out["logins"][role["name"]] = "ok"
        except pg.Error as error:
            out["logins"][role["name"]] = str(error).strip()
    print(json.dumps(out))


main()
