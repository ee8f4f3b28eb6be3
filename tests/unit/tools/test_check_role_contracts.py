# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tools/check_role_contracts.py: a fake role that agrees, then one disagreement of each kind at a time."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "check_role_contracts.py"
WRAPPER = ROOT / "tools" / "check-role-contracts"
GOOD = Path(__file__).with_name("fixtures") / "roles" / "good"


def _load_tool():
    spec = importlib.util.spec_from_file_location("check_role_contracts", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


contracts = _load_tool()


def _run(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, paths)], capture_output=True, text=True, check=False, timeout=60
    )


@pytest.fixture
def role(tmp_path) -> Path:
    """A copy of the agreeing fake role, under tmp_path/roles/good, to break."""
    copy = tmp_path / "roles" / "good"
    shutil.copytree(GOOD, copy)
    return copy


def _edit(role: Path, relative: str, old: str, new: str) -> None:
    path = role / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {relative}"
    path.write_text(text.replace(old, new), encoding="utf-8")


SPECS = "meta/argument_specs.yml"
DEFAULTS = "defaults/main.yml"
README = "README.md"

# (id, file, old text, new text, the finding expected, or the findings in order)
BREAKS = [
    (
        "spec-lacks-variable",
        SPECS,
        "      good_port:\n        type: int\n        default: 8080\n        description: A port.\n",
        "",
        "good: good_port: missing: in defaults/main.yml, not in argument_specs (main)",
    ),
    (
        "spec-has-unknown-variable",
        SPECS,
        "  extra:\n",
        "  other:\n    options:\n      good_typo:\n        type: str\n        description: A typo.\n  extra:\n",
        "good: good_typo: missing: in argument_specs (other), not in defaults/main.yml",
    ),
    (
        "readme-lacks-variable",
        README,
        "| `good_port` | `8080` | a port |\n",
        "",
        "good: good_port: missing: in defaults/main.yml, not in the README's variable table",
    ),
    (
        "readme-has-unknown-variable",
        README,
        "| `good_port` | `8080` | a port |\n",
        "| `good_port` | `8080` | a port |\n| `good_prot` | `8080` | a typo |\n",
        "good: good_prot: missing: in the README's variable table, not in defaults/main.yml",
    ),
    (
        "readme-two-variables-in-one-row",
        README,
        "| `good_name` | `demo` | a name |\n",
        "| `good_name` / `good_port` | `demo` | a name |\n",
        (
            "good: good_name: missing: in defaults/main.yml, not in the README's variable table",
            "good: good_name` / `good_port: missing: in the README's variable table, not in defaults/main.yml",
        ),
    ),
    (
        "spec-default-differs",
        SPECS,
        "        default: 8080\n",
        "        default: 8081\n",
        "good: good_port: default: defaults/main.yml has 8080, argument_specs (main) has 8081",
    ),
    (
        "spec-default-true-is-not-1",
        SPECS,
        "        default: true\n",
        "        default: 1\n",
        "good: good_enabled: default: defaults/main.yml has true, argument_specs (main) has 1",
    ),
    (
        "spec-lacks-dict-default",
        SPECS,
        "        default:\n          retries: 3\n          mode: fast\n",
        "",
        "good: good_settings: default: defaults/main.yml has {mode: fast, retries: 3}, argument_specs (main) has nothing",
    ),
    (
        "spec-templated-default-not-verbatim",
        SPECS,
        '        default: "{{ good_data_dir }}/cache"\n',
        "        default: /data/good/cache\n",
        "good: good_cache_dir: default: defaults/main.yml has '{{ good_data_dir }}/cache', argument_specs (main) has "
        "/data/good/cache",
    ),
    (
        "spec-required-with-a-default",
        SPECS,
        '        default: ""\n',
        '        default: ""\n        required: true\n',
        "good: good_bucket: default: argument_specs (main) says required but defaults/main.yml sets ''",
    ),
    (
        "spec-default-for-a-null-variable",
        SPECS,
        "        required: false\n",
        "        default: secret\n",
        "good: good_token: default: defaults/main.yml has null, so argument_specs (main) must have no default",
    ),
    (
        "spec-type-differs",
        SPECS,
        "        type: str\n        default: demo\n        description: A name.\n      good_port:",
        "        type: int\n        default: demo\n        description: A name.\n      good_port:",
        "good: good_name: type: argument_specs (main) says type int, defaults/main.yml has a str (demo)",
    ),
    (
        "spec-type-missing-means-str",
        SPECS,
        "        type: dict\n",
        "",
        "good: good_settings: type: argument_specs (main) says type str, defaults/main.yml has a dict",
    ),
    (
        "spec-elements-differ",
        SPECS,
        "        elements: str\n        default: [curl, jq]\n",
        "        elements: int\n        default: [curl, jq]\n",
        "good: good_packages: type: argument_specs (main) says elements int, default has [curl, jq]",
    ),
    (
        "default-not-in-choices",
        SPECS,
        'choices: ["000", "001"]',
        'choices: ["001", "010"]',
        "good: good_replication: type: default '000' is not one of argument_specs (main) choices",
    ),
    (
        "defaults-value-changed",
        DEFAULTS,
        "good_port: 8080\n",
        "good_port: 9090\n",
        (
            "good: good_port: default: defaults/main.yml has 9090, argument_specs (main) has 8080",
            "good: good_port: readme: README default is `8080`, defaults/main.yml has `9090`",
        ),
    ),
    (
        "readme-default-differs",
        README,
        "| `good_port` | `8080` |",
        "| `good_port` | `80` |",
        "good: good_port: readme: README default is `80`, defaults/main.yml has `8080`",
    ),
    (
        "readme-quoted-number-is-a-string",
        README,
        "| `good_port` | `8080` |",
        '| `good_port` | `"8080"` |',
        'good: good_port: readme: README default is `"8080"`, defaults/main.yml has `8080`',
    ),
    (
        "readme-templated-default-in-words",
        README,
        "| `good_cache_dir` | `{{ good_data_dir }}/cache` |",
        "| `good_cache_dir` | `cache/` below the data directory |",
        "good: good_cache_dir: readme: README default is `cache/` below the data directory, defaults/main.yml has "
        "`{{ good_data_dir }}/cache`",
    ),
    (
        "readme-repeats-variable",
        README,
        "| `good_port` | `8080` | a port |\n",
        "| `good_port` | `8080` | a port |\n| `good_port` | `8080` | again |\n",
        "good: good_port: readme: README lists it more than once",
    ),
    (
        "spec-lacks-description",
        SPECS,
        "        description: A port.\n",
        "",
        "good: good_port: description: argument_specs (main) has no description",
    ),
]


def test_agreeing_role_passes():
    result = _run(GOOD.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "check-role-contracts: 1 roles, 13 variables, 0 findings\n"


def test_the_wrapper_runs_the_check_on_the_venvs_python():
    result = subprocess.run([str(WRAPPER), str(GOOD)], capture_output=True, text=True, check=False, timeout=60, cwd="/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "check-role-contracts: 1 roles, 13 variables, 0 findings\n"


def test_a_role_directory_can_be_named_directly():
    result = _run(GOOD)
    assert result.returncode == 0, result.stdout
    assert "1 roles, 13 variables, 0 findings" in result.stdout


@pytest.mark.parametrize(
    ("relative", "old", "new", "expected"), [case[1:] for case in BREAKS], ids=[c[0] for c in BREAKS]
)
def test_each_disagreement_fails_with_one_line_naming_role_and_variable(role, relative, old, new, expected):
    _edit(role, relative, old, new)
    result = _run(role.parent)
    assert result.returncode == 1, result.stdout
    expected = (expected,) if isinstance(expected, str) else expected
    *findings, summary = result.stdout.splitlines()
    assert len(findings) == len(expected), result.stdout
    for line, start in zip(findings, expected, strict=True):
        assert line.startswith(start), result.stdout
    kinds = Counter(start.split(": ")[2] for start in expected)
    by_kind = ", ".join(f"{kinds[kind]} {kind}" for kind in sorted(kinds))
    assert summary == f"check-role-contracts: 1 roles, 13 variables, {len(expected)} findings ({by_kind})"


def test_missing_readme_is_a_finding(role):
    (role / README).unlink()
    result = _run(role.parent)
    assert result.returncode == 1
    assert "good: -: missing: README.md does not exist" in result.stdout


def test_findings_of_several_roles_are_counted_by_kind(role):
    second = role.parent / "second"
    shutil.copytree(role, second)
    _edit(role, SPECS, "        default: 8080\n", "        default: 8081\n")
    _edit(second, README, "| `good_port` | `8080` | a port |\n", "")
    result = _run(role.parent)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        "check-role-contracts: 2 roles, 26 variables, 2 findings (1 default, 1 missing)"
    )


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        (1, 1, True),
        (True, 1, False),
        (1, 1.0, False),
        ("000", "000", True),
        ({"a": [1, True]}, {"a": [1, True]}, True),
        ({"a": [1, True]}, {"a": [1, 1]}, False),
        ([1, 2], [1, 2, 3], False),
        (None, None, True),
        ("", None, False),
    ],
)
def test_same_value_does_not_mix_types(left, right, same):
    assert contracts.same_value(left, right) is same


def test_readme_cells_split_on_bars_but_not_on_escaped_ones(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(
        "| Variable | Default | Meaning |\n|---|---|---|\n| `a` | `{{ x \\| default([]) }}` | one \\| two |\n",
        encoding="utf-8",
    )
    assert contracts.readme_variables(readme) == ({"a": "`{{ x | default([]) }}`"}, [])


def test_the_collections_roles_agree():
    result = _run(ROOT / "roles")
    assert result.returncode == 0, result.stdout
