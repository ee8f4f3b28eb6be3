# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""execution-environment.yml through the real `ansible-builder create` (the pinned 3.2.0), on a copy of the file and
its meta/ee-* lists beside a collection tarball built from this checkout.

`create` writes the build context (Containerfile, _build/...) and builds nothing: no container engine runs here, so
no image is built or run by any test (docs/awx.md).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text(encoding="utf-8"))
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line)
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    """The build context `ansible-builder create` makes from the checkout's execution-environment.yml."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(ROOT / "execution-environment.yml", work)
    shutil.copytree(ROOT / "meta", work / "meta")
    build = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(work / "build/ee"), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    create = subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            "execution-environment.yml",
            "-c",
            "context",
            "--output-filename",
            "Containerfile",
            "-v",
            "3",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert create.returncode == 0, create.stdout + create.stderr
    assert "No matches" not in create.stdout + create.stderr, create.stdout + create.stderr
    return work / "context"


def test_the_containerfile_installs_the_pinned_ansible_on_the_base_image_given_as_a_build_arg(context):
    containerfile = (context / "Containerfile").read_text(encoding="utf-8")
    dev = pins(ROOT / "requirements-dev.txt")
    assert re.search(r'^ARG EE_BASE_IMAGE="[^"]+"$', containerfile, re.MULTILINE), containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"$', containerfile, re.MULTILINE).group(1).split()
    assert sorted(refs) == sorted([f"ansible-core=={dev['ansible-core']}", f"ansible-runner=={dev['ansible-runner']}"])
    assert dev["ansible-core"].startswith("2.19.")
    # the collections, the Python and the system dependencies are installed in the image's stages
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "/output/scripts/install-from-bindep" in containerfile
    # the final image's environment: the collections path, a failed inventory fails, the drift guard loaded but off
    for line in (
        "ENV ANSIBLE_COLLECTIONS_PATH=/usr/share/ansible/collections",
        "ENV ANSIBLE_INVENTORY_UNPARSED_FAILED=True",
        "ENV ANSIBLE_CALLBACKS_ENABLED=oceanid.fleet.drift_guard",
        "ENV OCEANID_DRIFT_GUARD=off",
    ):
        assert line in containerfile.split("FROM base AS final")[1], line


def test_the_context_installs_this_collection_built_from_the_checkout(context):
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    entry = next(c for c in requirements["collections"] if c.get("type") == "file")
    # the galaxy stage runs in /build, a copy of _build
    tarball = context / "_build" / entry["name"]
    assert tarball.name == TARBALL
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        manifest = yaml.safe_load(archive.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["namespace"] == "oceanid"
    assert manifest["collection_info"]["name"] == "fleet"
    assert manifest["collection_info"]["version"] == GALAXY["version"]
    # what AWX runs from the EE: the playbooks (by FQCN), the roles, the plugins, and the push's data file
    for name in (
        "playbooks/site.yml",
        "playbooks/awx_configure.yml",
        "awx/fleet.yml",
        "plugins/callback/drift_guard.py",
        "roles/triton_server/tasks/main.yml",
    ):
        assert name in names, name
    assert not any(n.startswith(("tests/", "molecule/", "inventories/lab")) for n in names)


def test_the_context_installs_the_collections_this_collection_needs(context):
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    wanted = {c["name"]: c["version"] for c in requirements["collections"] if c.get("type") != "file"}
    online = yaml.safe_load((ROOT / "requirements.yml").read_text(encoding="utf-8"))
    # requirements.yml is what an online install reads; the EE has the same ranges, and awx.awx for the push
    assert {c["name"]: c["version"] for c in online["collections"]} == {
        k: v for k, v in wanted.items() if k != "awx.awx"
    }
    assert set(GALAXY["dependencies"].items()) <= set(wanted.items())
    assert "awx.awx" in wanted


def test_the_context_installs_the_python_and_system_packages_the_plugins_need(context):
    python = pins(context / "_build" / "requirements.txt")
    dev = pins(ROOT / "requirements-dev.txt")
    for package in ("boto3", "kubernetes", "tritonclient"):
        assert python[package] == dev[package], package  # the versions the tests run with
    # every third-party module a plugin imports is in the image
    imported = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        for match in re.finditer(
            r"^\s*(?:import|from)\s+(boto3|botocore|kubernetes|jsonschema|tritonclient)\b",
            path.read_text(encoding="utf-8"),
            re.MULTILINE,
        ):
            imported.add(match.group(1))
    assert imported <= set(python), imported - set(python)
    bindep = (context / "_build" / "bindep.txt").read_text(encoding="utf-8")
    assert re.search(r"^openssh-clients \[platform:rpm\]$", bindep, re.MULTILINE)
    assert re.search(r"^git-core \[platform:rpm\]$", bindep, re.MULTILINE)
