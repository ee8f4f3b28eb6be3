# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""label_studio_project's pure parts: the labels check, the generated label config, the XML comparison.

The module itself runs against a real Label Studio in tests/integration/label_studio.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.oceanid.fleet.plugins.modules.label_studio_project import (
    _Failed,
    check_labels,
    generate_label_config,
    normalise_xml,
)


def test_labels_of_strings_and_dicts():
    labels = ["VESSEL", {"value": "PORT", "background": "#00ff00", "hotkey": "p"}, {"value": "GEAR", "hotkey": None}]
    assert check_labels(labels) == [
        {"value": "VESSEL"},
        {"value": "PORT", "background": "#00ff00", "hotkey": "p"},
        {"value": "GEAR"},
    ]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([], "non-empty list"),
        ("VESSEL", "non-empty list"),
        (["A", 3], r"labels\[1\] \(3\): must be a string or a dict"),
        (["A", {"value": "B", "colour": "red"}], r"labels\[1\] .*unknown key\(s\) colour"),
        (["A", {"background": "red"}], r"labels\[1\] .*value must be a non-empty string"),
        (["A", " "], r"labels\[1\] .*value must be a non-empty string"),
        (["A", "B", "A"], r"labels\[2\] .*already labels\[0\]; values must be unique"),
        (["A", {"value": "B", "hotkey": 1}], r"labels\[1\] .*hotkey must be a string"),
    ],
)
def test_bad_labels_are_named(labels, message):
    with pytest.raises(_Failed, match=message):
        check_labels(labels)


def test_generated_config_has_the_contracted_controls_and_escapes_values():
    xml = generate_label_config(check_labels(["VESSEL", {"value": 'PORT & "harbour" <x>', "background": "#f00"}]))
    root = ET.fromstring(xml)
    assert root.tag == "View"
    objects = {e.get("name"): e for e in root if e.get("value", "").startswith("$")}
    assert objects["pdf"].get("value") == "$pdf" and objects["text"].get("value") == "$text"
    textarea = root.find("TextArea")
    assert textarea.get("name") == "extracted_text" and textarea.get("toName") == "pdf"
    labels = root.find("Labels")
    assert labels.get("name") == "label" and labels.get("toName") == "text"
    assert [(e.get("value"), e.get("background")) for e in labels] == [
        ("VESSEL", None),
        ('PORT & "harbour" <x>', "#f00"),
    ]


def test_xml_comparison_ignores_whitespace_and_attribute_order():
    a = '<View>\n  <Text name="text" value="$text"/>\n</View>\n'
    b = "<View><Text value='$text'   name='text'></Text></View>"
    assert normalise_xml(a) == normalise_xml(b)
    assert normalise_xml(a) != normalise_xml(a.replace("$text", "$other"))
    assert normalise_xml(" <View><Text ") == "<View><Text"  # not XML: compared as text
