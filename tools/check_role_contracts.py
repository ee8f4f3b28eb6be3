# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check that each role's three descriptions of its variables agree.

    tools/check-role-contracts [ROLE_DIR_OR_ROLES_DIR ...]     (default: roles/ of this checkout)

A role's public variables are written down three times: ``defaults/main.yml`` (the values Ansible uses),
``meta/argument_specs.yml`` (types and descriptions, validated when the role starts, shown by ansible-doc)
and the README's variable table (what people read). defaults/main.yml is the source of truth; the other two
must say the same. One line per finding, then a summary; exit status 1 when anything disagrees.

The rules:

- every variable of defaults/main.yml is an option of the ``main`` entry point and a row of a README table
  whose first column is headed ``Variable``, and every option of any entry point and every README row is a
  variable of defaults/main.yml (kind ``missing``);
- the option's ``default`` equals the value in defaults/main.yml, compared as parsed YAML (kind ``default``).
  A templated default (one containing ``{{`` or ``{%``) is carried verbatim, the same string; the description
  says in words what it computes to. A variable whose default is null must have no spec default and must not
  be ``required``; a variable with a value is never ``required`` (the role default always provides it, so
  Ansible would never find it missing: the preflight enforces "required" instead);
- the option's ``type`` (Ansible's default: ``str``) accepts the default's YAML type (kind ``type``): ``str``
  and ``path`` a string, ``int`` an integer, ``float`` a number, ``bool`` a boolean, ``list`` a list (its
  items checked against ``elements``), ``dict`` a mapping, ``raw`` anything. A templated default is
  accepted by every type, since only the rendered value has one. A default must be one of ``choices``;
- the README's default cell is the default in code, ``` `value` ``` (``\\|`` for a ``|`` inside a table),
  parsed as YAML and compared like the spec default; a string default may also be written bare
  (``` `4.48` ```, ``` `000` ```) (kind ``readme``);
- every option has a description (kind ``description``).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

try:
    import yaml
except ImportError:
    sys.exit("check-role-contracts: needs PyYAML; run tools/check-role-contracts, which uses .venv (make venv)")

ROOT = Path(__file__).resolve().parents[1]

_TEMPLATE = re.compile(r"{{|{%")
_CODE_CELL = re.compile(r"^`(?P<code>.*)`$")
_MISSING = object()


@dataclass(frozen=True)
class Finding:
    role: str
    variable: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.role}: {self.variable}: {self.kind}: {self.message}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps Ansible's ``!unsafe`` and ``!vault`` tags as plain strings."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
_Loader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


def _load_yaml(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)


def _is_templated(value) -> bool:
    return isinstance(value, str) and bool(_TEMPLATE.search(value))


def same_value(left, right) -> bool:
    """Equality of parsed YAML that does not let ``true == 1`` or ``1 == 1.0`` pass."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_value(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(same_value(a, b) for a, b in zip(left, right, strict=True))
    if type(left) is not type(right):
        return False
    return left == right


def _show(value) -> str:
    if value is _MISSING:
        return "nothing"
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("\n...").strip()


# The Python types each argument_spec type accepts for a (non-templated) default.
_TYPES = {
    "str": (str,),
    "path": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
    "bytes": (str, int),
    "bits": (str, int),
    "json": (str, list, dict),
    "jsonarg": (str, list, dict),
}


def _type_accepts(spec_type: str, value) -> bool:
    if spec_type == "raw" or _is_templated(value):
        return True
    accepted = _TYPES.get(spec_type)
    if accepted is None:
        return False
    if isinstance(value, bool) and bool not in accepted:
        return False  # YAML true is a bool, not an int
    return isinstance(value, accepted)


def _check_option(role: str, entry: str, name: str, option, default) -> list[Finding]:
    where = f"argument_specs ({entry})"
    if not isinstance(option, dict):
        return [Finding(role, name, "type", f"{where} option is not a mapping")]
    findings = []
    if not option.get("description"):
        findings.append(Finding(role, name, "description", f"{where} has no description"))
    spec_default = option.get("default", _MISSING)
    if default is None:
        if spec_default is not _MISSING or option.get("required"):
            findings.append(
                Finding(
                    role,
                    name,
                    "default",
                    f"defaults/main.yml has null, so {where} must have no default and not be required "
                    f"(it has default {_show(spec_default)}, required {option.get('required', False)})",
                )
            )
        return findings
    if option.get("required"):
        findings.append(
            Finding(role, name, "default", f"{where} says required but defaults/main.yml sets {_show(default)}")
        )
    if spec_default is _MISSING or not same_value(spec_default, default):
        findings.append(
            Finding(
                role,
                name,
                "default",
                f"defaults/main.yml has {_show(default)}, {where} has {_show(spec_default)}",
            )
        )
    spec_type = option.get("type", "str")
    if not _type_accepts(spec_type, default):
        findings.append(
            Finding(
                role,
                name,
                "type",
                f"{where} says type {spec_type}, defaults/main.yml has a {type(default).__name__} ({_show(default)})",
            )
        )
    elif spec_type == "list" and isinstance(default, list) and "elements" in option:
        bad = [item for item in default if not _type_accepts(option["elements"], item)]
        if bad:
            findings.append(
                Finding(role, name, "type", f"{where} says elements {option['elements']}, default has {_show(bad)}")
            )
    choices = option.get("choices")
    if choices is not None and not _is_templated(default) and not any(same_value(default, c) for c in choices):
        findings.append(
            Finding(role, name, "type", f"default {_show(default)} is not one of {where} choices {_show(choices)}")
        )
    return findings


def _split_row(line: str) -> list[str]:
    """Cells of a Markdown table row; ``\\|`` is a literal bar (also inside code)."""
    text = line.strip()
    text = text[1:] if text.startswith("|") else text
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    cells, cell, escaped = [], [], False
    for char in text:
        if escaped:
            cell.append(char if char == "|" else "\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "|":
            cells.append("".join(cell).strip())
            cell = []
        else:
            cell.append(char)
    cells.append("".join(cell).strip())
    return cells


def readme_variables(path: Path) -> tuple[dict[str, str], list[str]]:
    """The README's variable rows (name -> default cell) and the names given more than once."""
    rows: dict[str, str] = {}
    repeated: list[str] = []
    columns = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("|"):
            columns = None
            continue
        cells = _split_row(line)
        if columns is None:
            columns = [cell.lower() for cell in cells]
            if not columns or columns[0] != "variable" or "default" not in columns:
                columns = []  # another table: skip its rows
            continue
        if not columns or set("".join(cells)) <= set("-: "):
            continue
        match = _CODE_CELL.match(cells[0])
        name = match.group("code") if match else cells[0]
        cell = cells[columns.index("default")] if len(cells) > columns.index("default") else ""
        if name in rows:
            repeated.append(name)
        rows[name] = cell
    return rows, repeated


def _readme_cell_matches(cell: str, default) -> bool:
    match = _CODE_CELL.match(cell)
    if not match:
        return False
    code = match.group("code")
    if isinstance(default, str) and code == default:
        return True
    try:
        parsed = yaml.load(code, Loader=_Loader)
    except yaml.YAMLError:
        return False
    return same_value(parsed, default)


def check_role(role_dir: Path) -> list[Finding]:
    role = role_dir.name
    findings: list[Finding] = []
    defaults_path = role_dir / "defaults" / "main.yml"
    specs_path = role_dir / "meta" / "argument_specs.yml"
    readme_path = role_dir / "README.md"
    for path in (defaults_path, specs_path, readme_path):
        if not path.is_file():
            findings.append(Finding(role, "-", "missing", f"{path.relative_to(role_dir)} does not exist"))
    if findings:
        return findings

    defaults = _load_yaml(defaults_path) or {}
    specs = (_load_yaml(specs_path) or {}).get("argument_specs") or {}
    readme, repeated = readme_variables(readme_path)
    findings.extend(Finding(role, name, "readme", "README lists it more than once") for name in repeated)

    if "main" not in specs:
        findings.append(Finding(role, "-", "missing", "meta/argument_specs.yml has no main entry point"))
    for entry, spec in specs.items():
        options = (spec or {}).get("options") or {}
        for name, option in options.items():
            if name not in defaults:
                findings.append(
                    Finding(role, name, "missing", f"in argument_specs ({entry}), not in defaults/main.yml")
                )
                continue
            findings.extend(_check_option(role, entry, name, option, defaults[name]))
        if entry == "main":
            findings.extend(
                Finding(role, name, "missing", "in defaults/main.yml, not in argument_specs (main)")
                for name in defaults
                if name not in options
            )

    for name, value in defaults.items():
        if name not in readme:
            findings.append(Finding(role, name, "missing", "in defaults/main.yml, not in the README's variable table"))
        elif not _readme_cell_matches(readme[name], value):
            shown = f"`{_show(value)}`" if not isinstance(value, str) else f"`{value}`"
            findings.append(
                Finding(
                    role, name, "readme", f"README default is {readme[name] or 'empty'}, defaults/main.yml has {shown}"
                )
            )
    findings.extend(
        Finding(role, name, "missing", "in the README's variable table, not in defaults/main.yml")
        for name in readme
        if name not in defaults
    )
    return findings


def role_dirs(arguments: list[str]) -> list[Path]:
    """Roles named on the command line: a role directory, or a directory of roles."""
    found = []
    for argument in arguments or [str(ROOT / "roles")]:
        path = Path(argument)
        if (path / "defaults").is_dir() or (path / "meta").is_dir():
            found.append(path)
        else:
            found.extend(sorted(child for child in path.iterdir() if child.is_dir()))
    return found


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__)
        return 0
    roles = role_dirs(argv)
    findings = []
    variables = 0
    for role_dir in roles:
        findings.extend(check_role(role_dir))
        defaults_path = role_dir / "defaults" / "main.yml"
        if defaults_path.is_file():
            variables += len(_load_yaml(defaults_path) or {})
    for finding in findings:
        print(finding)
    kinds = Counter(finding.kind for finding in findings)
    by_kind = ", ".join(f"{kinds[kind]} {kind}" for kind in sorted(kinds))
    print(
        f"check-role-contracts: {len(roles)} roles, {variables} variables, {len(findings)} findings"
        + (f" ({by_kind})" if by_kind else "")
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
