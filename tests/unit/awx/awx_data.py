# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""awx/fleet.yml read as AWX would read it: each job template with the data file's defaults, what its survey passes
when nobody answers, and what its credentials inject (env and extra vars). Shared by the offline checks
(tests/unit/awx) and the ansible-runner test (tests/integration/awx)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import jinja2.meta
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_FILE = REPO_ROOT / "awx" / "fleet.yml"

# The credential types AWX ships (managed) that the data file uses; their fields are AWX's.
BUILTIN_CREDENTIAL_TYPES = {
    "Machine": {"username", "password", "ssh_key_data", "ssh_key_unlock", "become_method", "become_username"},
    "Amazon Web Services": {"username", "password", "security_token"},
}
# What AWX's own "Amazon Web Services" type injects (awx/main/models/credential/injectors.py: aws).
BUILTIN_INJECTORS = {
    "Amazon Web Services": {
        "env": {
            "AWS_ACCESS_KEY_ID": "{{ username }}",
            "AWS_SECRET_ACCESS_KEY": "{{ password }}",
        }
    },
    # A Machine credential becomes ansible-playbook's -u/--private-key, not env or extra vars.
    "Machine": {},
}


class _Loader(yaml.SafeLoader):
    """YAML with Ansible's !unsafe (a plain string here: the data file marks what Ansible must not template)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load(path: Path = DATA_FILE) -> dict:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)


@dataclass
class JobTemplate:
    """One job template as AWX launches it when nobody answers anything (survey defaults, the template's fields)."""

    name: str
    playbook: str
    job_type: str
    verbosity: int
    job_tags: str
    skip_tags: str
    limit: str
    job_slice_count: int
    extra_vars: dict
    survey: list[dict]
    credentials: list[str]
    raw: dict = field(repr=False)

    @property
    def tags(self) -> list[str]:
        return [t.strip() for t in self.job_tags.split(",") if t.strip()]

    @property
    def skip(self) -> list[str]:
        return [t.strip() for t in self.skip_tags.split(",") if t.strip()]

    def survey_defaults(self) -> dict:
        """The extra vars a survey launched with its defaults passes: AWX leaves out an optional question whose
        default is empty (nothing answered), and passes every other default."""
        return {
            q["variable"]: q["default"]
            for q in self.survey
            if q.get("default") not in (None, "") or (q.get("required") and q.get("default") is not None)
        }


def job_templates(data: dict | None = None) -> list[JobTemplate]:
    data = data or load()
    defaults = data.get("awx_job_template_defaults", {})
    found = []
    for raw in data["awx_job_templates"]:
        jt = {**defaults, **raw}
        found.append(
            JobTemplate(
                name=jt["name"],
                playbook=jt["playbook"],
                job_type=jt.get("job_type", "run"),
                verbosity=int(jt.get("verbosity", 0)),
                job_tags=jt.get("job_tags", ""),
                skip_tags=jt.get("skip_tags", ""),
                limit=jt.get("limit", ""),
                job_slice_count=int(jt.get("job_slice_count", 1)),
                extra_vars=dict(jt.get("extra_vars") or {}),
                survey=list((jt.get("survey_spec") or {}).get("spec", [])),
                credentials=list(jt.get("credentials", [])),
                raw=jt,
            )
        )
    return found


def job_template(name: str, data: dict | None = None) -> JobTemplate:
    return next(jt for jt in job_templates(data) if jt.name == name)


def credential_type_fields(data: dict | None = None) -> dict[str, set[str]]:
    data = data or load()
    fields = {name: set(ids) for name, ids in BUILTIN_CREDENTIAL_TYPES.items()}
    for ct in data["awx_credential_types"]:
        fields[ct["name"]] = {f["id"] for f in ct["inputs"]["fields"]}
    return fields


def injectors(data: dict | None = None) -> dict[str, dict]:
    data = data or load()
    found = dict(BUILTIN_INJECTORS)
    for ct in data["awx_credential_types"]:
        found[ct["name"]] = ct.get("injectors", {})
    return found


def template_variables(template: str) -> set[str]:
    """The variables a Jinja template string refers to."""
    return jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))


def inject(credential_type: str, inputs: dict, data: dict | None = None) -> tuple[dict, dict]:
    """(env, extra_vars) that a credential of this type with these inputs injects into a job, as AWX renders them."""
    spec = injectors(data)[credential_type]
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined)

    def render(section: str) -> dict:
        return {k: environment.from_string(v).render(**inputs) for k, v in (spec.get(section) or {}).items()}

    return render("env"), render("extra_vars")


def credential(name: str, data: dict | None = None) -> dict:
    data = data or load()
    return next(c for c in data["awx_credentials"] if c["name"] == name)


def slices(hosts: list[str], count: int) -> list[list[str]]:
    """The hosts of each slice of a sliced job: AWX deals the inventory's hosts out in turn (host i -> slice i % N)."""
    return [hosts[i::count] for i in range(count) if hosts[i::count]]
