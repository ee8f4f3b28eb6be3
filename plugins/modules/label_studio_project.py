#!/usr/bin/python
# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: label_studio_project
short_description: Create, update or delete a Label Studio project by its exact title
version_added: 0.1.0
description:
  - Makes sure a Label Studio project with the exact title O(title) exists (O(state=present)) or does not
    (O(state=absent)). Label Studio's own title filter is a substring match and titles are not unique, so the
    module lists every project (all pages) and compares titles exactly.
  - The labelling interface (label config) is given verbatim with O(label_config), or generated from
    O(labels), the content of a C(labels.json) file. It is updated only when it differs from the project's;
    the comparison is on the canonical XML, so differences in whitespace or attribute order do not count.
  - A new or changed label config is validated by Label Studio (C(POST /api/projects/validate/)) before anything
    is changed, in check mode too; a bad one fails quoting Label Studio's reason and leaves the project as it was.
  - More than one project with the title makes the module fail, naming how many and their ids.
options:
  title:
    description:
      - The project's title, matched exactly (case and spaces count). Label Studio wants 3 to 50 characters.
    type: str
    required: true
  state:
    description:
      - V(present) creates the project or updates its label config and description.
      - V(absent) deletes the project with this title, with its tasks and annotations.
    type: str
    choices: [present, absent]
    default: present
  label_config:
    description:
      - The label config XML, verbatim. Mutually exclusive with O(labels).
      - Without O(label_config) and O(labels), the label config of an existing project is left alone and a new
        project gets Label Studio's default (an empty C(<View>)).
    type: str
  labels:
    description:
      - The NER labels, as a list of strings or of dictionaries with the keys C(value) (required), C(background)
        (a colour) and C(hotkey), as in a C(labels.json) file. Values must be unique non-empty strings.
      - The generated interface shows the document of task data key C(pdf) and the text of key C(text) (both
        must be in every task; C(text) may be empty), has a C(TextArea) control named C(extracted_text) (for the
        text an ML backend extracts from the document) and a C(Labels) control named C(label) with these labels
        for spans of C(text). See RV(project.label_config) for the exact XML.
      - Mutually exclusive with O(label_config).
    type: list
    elements: raw
  description:
    description:
      - The project's description. Left alone when not given.
    type: str
extends_documentation_fragment:
  - oceanid.fleet.label_studio
  - ansible.builtin.action_common_attributes
  - oceanid.fleet.action_group
attributes:
  check_mode:
    support: full
    details:
      - Reads the projects and validates a new label config with Label Studio (a read-only call), and reports what
        would change.
  diff_mode:
    support: full
    details:
      - The title, description and label config (as XML) before and after.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
seealso:
  - name: Label Studio labelling configuration
    description: The tags of a label config.
    link: https://labelstud.io/tags/
author:
  - Oceanid fleet maintainers (@oceanid)
"""

EXAMPLES = r"""
- name: NER project from a labels.json file
  oceanid.fleet.label_studio_project:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    title: NER_Data
    description: Named entities in fishery documents
    labels: "{{ lookup('ansible.builtin.file', 'labels.json') | from_json }}"
  register: ner_project

- name: Labels with colours and hotkeys
  oceanid.fleet.label_studio_project:
    title: NER_Data
    labels:
      - value: VESSEL
        background: "#1f77b4"
        hotkey: v
      - PORT
      - SPECIES
  environment:
    LABEL_STUDIO_URL: https://labels.example.com
    LABEL_STUDIO_API_KEY: "{{ label_studio_personal_access_token }}"

- name: A project with a label config given verbatim
  oceanid.fleet.label_studio_project:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    title: Image triage
    label_config: |
      <View>
        <Image name="image" value="$image"/>
        <Choices name="choice" toName="image">
          <Choice value="keep"/>
          <Choice value="drop"/>
        </Choices>
      </View>

- name: Delete a project
  oceanid.fleet.label_studio_project:
    url: http://127.0.0.1:8080
    api_token: "{{ label_studio_api_token }}"
    title: Old experiment
    state: absent
"""

RETURN = r"""
project:
  description:
    - The project after the module's work (in check mode, as it would be). Empty after O(state=absent).
    - A project that check mode would create has no RV(project.id).
  returned: always
  type: dict
  contains:
    id:
      description: The project's id.
      type: int
      returned: when the project exists
      sample: 3
    title:
      description: The title.
      type: str
      returned: success
      sample: NER_Data
    description:
      description: The description.
      type: str
      returned: success
    label_config:
      description: The label config XML.
      type: str
      returned: success
      sample: |
        <View>
          <Header value="Document"/>
          <HyperText name="pdf" value="$pdf" valueType="url" inline="true"/>
          <Header value="Extracted text"/>
          <TextArea name="extracted_text" toName="pdf" editable="true" rows="8" maxSubmissions="1"/>
          <Header value="Entities"/>
          <Labels name="label" toName="text">
            <Label value="VESSEL" background="#1f77b4" hotkey="v"/>
          </Labels>
          <Text name="text" value="$text"/>
        </View>
    created_at:
      description: When Label Studio created it.
      type: str
      returned: when the project exists
    task_number:
      description: Number of tasks.
      type: int
      returned: when the project exists
deleted:
  description: Ids of the projects deleted (in check mode, that would be deleted).
  returned: always
  type: list
  elements: int
  sample: []
"""

import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import (
    LabelStudioError,
    label_studio_argument_spec,
)
from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio_module import (
    client_from_module,
    fail_from_error,
)

_LABEL_KEYS = ("value", "background", "hotkey")
_RETURNED = ("id", "title", "description", "label_config", "created_at", "task_number")


class _Failed(Exception):
    """Ends the module with fail_json(msg=...)."""


def check_labels(labels):
    """The labels as a list of dicts with ``value`` and optional ``background``/``hotkey``; _Failed names a bad one."""
    if not isinstance(labels, list) or not labels:
        raise _Failed("labels must be a non-empty list of strings or of dicts with value, background and hotkey")
    out = []
    seen = {}
    for index, item in enumerate(labels):
        where = "labels[%d] (%r)" % (index, item)
        if isinstance(item, str):
            item = {"value": item}
        if not isinstance(item, dict):
            raise _Failed("%s: must be a string or a dict with value, background and hotkey" % where)
        unknown = sorted(str(key) for key in item if key not in _LABEL_KEYS)
        if unknown:
            raise _Failed(
                "%s: unknown key(s) %s; a label has only value, background and hotkey" % (where, ", ".join(unknown))
            )
        value = item.get("value")
        if not isinstance(value, str) or not value.strip():
            raise _Failed("%s: value must be a non-empty string" % where)
        if value in seen:
            raise _Failed("%s: value %r is already labels[%d]; values must be unique" % (where, value, seen[value]))
        seen[value] = index
        for key in ("background", "hotkey"):
            if key in item and item[key] is not None and not isinstance(item[key], str):
                raise _Failed("%s: %s must be a string" % (where, key))
        out.append({key: item[key] for key in _LABEL_KEYS if item.get(key) not in (None, "")})
    return out


def generate_label_config(labels):
    """The interface for NER on documents: the PDF (task key ``pdf``), a TextArea ``extracted_text`` for the text an
    ML backend extracts, and Labels ``label`` over the text (task key ``text``)."""
    lines = [
        "<View>",
        '  <Header value="Document"/>',
        '  <HyperText name="pdf" value="$pdf" valueType="url" inline="true"/>',
        '  <Header value="Extracted text"/>',
        '  <TextArea name="extracted_text" toName="pdf" editable="true" rows="8" maxSubmissions="1"/>',
        '  <Header value="Entities"/>',
        '  <Labels name="label" toName="text">',
    ]
    for label in labels:
        attributes = " ".join("%s=%s" % (key, quoteattr(label[key])) for key in _LABEL_KEYS if key in label)
        lines.append("    <Label %s/>" % attributes)
    lines += ["  </Labels>", '  <Text name="text" value="$text"/>', "</View>"]
    return "\n".join(lines) + "\n"


def normalise_xml(text):
    """Canonical XML (C14N 2.0, whitespace-only text dropped) for comparison; the stripped text if not XML."""
    if text is None:
        return None
    try:
        return ET.canonicalize(xml_data=text, strip_text=True)
    except ET.ParseError:
        return text.strip()


def _public(project):
    return {key: project.get(key) for key in _RETURNED if key in project}


def _diff_text(project):
    if not project:
        return ""
    return "title: %s\ndescription: %s\nlabel_config:\n%s\n" % (
        project.get("title"),
        project.get("description") or "",
        (project.get("label_config") or "").rstrip("\n"),
    )


class LabelStudioProject:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = None

    def desired_label_config(self):
        if self.params["labels"] is not None:
            return generate_label_config(check_labels(self.params["labels"]))
        return self.params["label_config"]

    def run(self):
        title = self.params["title"]
        if not isinstance(title, str) or not title.strip():
            raise _Failed("title must be a non-empty string")
        label_config = self.desired_label_config() if self.params["state"] == "present" else None
        self.client = client_from_module(self.module)
        matches = self.client.find_projects(title)
        if len(matches) > 1:
            raise _Failed(
                "Label Studio at %s has %d projects titled %r (ids %s); this module manages a title only when it is "
                "unique: delete or rename the others first"
                % (self.client.url, len(matches), title, ", ".join(str(p.get("id")) for p in matches))
            )
        current = matches[0] if matches else None
        if self.params["state"] == "absent":
            return self.absent(current)
        return self.present(current, label_config)

    def absent(self, current):
        result = {"changed": False, "project": {}, "deleted": []}
        if current is None:
            return result
        result.update(changed=True, deleted=[current["id"]])
        result["diff"] = {"before": _diff_text(current), "after": ""}
        if not self.module.check_mode:
            self.client.delete_project(current["id"])
        return result

    def present(self, current, label_config):
        title = self.params["title"]
        description = self.params["description"]
        fields = {}
        if current is None:
            fields["title"] = title
            if label_config is not None:
                fields["label_config"] = label_config
            if description is not None:
                fields["description"] = description
        else:
            if label_config is not None and normalise_xml(label_config) != normalise_xml(current.get("label_config")):
                fields["label_config"] = label_config
            if description is not None and description != (current.get("description") or ""):
                fields["description"] = description
        if not fields:
            return {"changed": False, "project": _public(current), "deleted": [], "diff": self._diff(current, current)}
        if "label_config" in fields:
            # Read-only: Label Studio's verdict before anything changes (and in check mode).
            self.client.validate_label_config(fields["label_config"])
        if self.module.check_mode:
            after = dict(current or {}, **fields)
        elif current is None:
            after = self.client.create_project(fields)
        else:
            after = self.client.update_project(current["id"], fields)
        return {"changed": True, "project": _public(after), "deleted": [], "diff": self._diff(current, after)}

    @staticmethod
    def _diff(before, after):
        return {
            "before": _diff_text(before),
            "after": _diff_text(after),
            "before_header": "project %s" % ((before or {}).get("title") or "(none)"),
            "after_header": "project %s" % ((after or {}).get("title") or "(none)"),
        }


def main():
    argument_spec = label_studio_argument_spec()
    argument_spec.update(
        title={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        label_config={"type": "str"},
        labels={"type": "list", "elements": "raw"},
        description={"type": "str"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("label_config", "labels")],
    )
    runner = LabelStudioProject(module)
    try:
        result = runner.run()
    except _Failed as exc:
        module.fail_json(msg="project %r: %s" % (module.params["title"], exc))
    except LabelStudioError as exc:
        fail_from_error(module, exc, "project %r" % module.params["title"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
