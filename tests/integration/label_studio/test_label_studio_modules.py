# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oceanid.fleet.label_studio_project / _ml_backend / _webhook through ansible-playbook against a real Label Studio."""

from __future__ import annotations

from tests.support.label_studio import unused_url

LABELS = ["VESSEL", {"value": "PORT", "background": "#00aa00", "hotkey": "p"}, "SPECIES"]


def projects_titled(label_studio, title):
    status, body = label_studio.api("GET", "/api/projects/?page_size=100&title=" + title)
    assert status == 200, body
    return [p for p in body["results"] if p["title"] == title]


# -- projects ------------------------------------------------------------------------------------------------


def test_project_check_create_idempotent_update_delete(play, label_studio, title):
    project = ("label_studio_project", {"title": title, "labels": LABELS, "description": "NER"})
    checked = play([project], check=True)[0]
    assert checked["changed"] and not checked.get("failed"), checked
    assert "id" not in checked["project"]
    assert projects_titled(label_studio, title) == []

    result = play([project, project])
    first, second = result[0], result[1]
    assert first["changed"] and not first.get("failed"), first
    assert not second["changed"] and not second.get("failed"), second
    assert '<TextArea name="extracted_text" toName="pdf"' in first["diff"]["after"]
    assert first["project"]["id"] == second["project"]["id"]
    assert len(projects_titled(label_studio, title)) == 1

    # A prediction that fills the TextArea is accepted on a task of the generated interface.
    project_id = first["project"]["id"]
    task = {
        "data": {"pdf": "data:application/pdf;base64,JVBERi0xLjQK", "text": ""},
        "predictions": [
            {
                "model_version": "test",
                "score": 0.5,
                "result": [
                    {
                        "from_name": "extracted_text",
                        "to_name": "pdf",
                        "type": "textarea",
                        "value": {"text": ["text Triton extracted"]},
                    }
                ],
            }
        ],
    }
    status, body = label_studio.api("POST", f"/api/projects/{project_id}/import", [task])
    assert status == 201 and body["prediction_count"] == 1, body
    status, predictions = label_studio.api("GET", f"/api/predictions/?project={project_id}")
    assert predictions[0]["result"][0]["value"]["text"] == ["text Triton extracted"]

    # The same config with other whitespace is not a change; another label is, with a diff of the XML.
    spaced = first["project"]["label_config"].replace("\n  ", "\n\n      ")
    more = ("label_studio_project", {"title": title, "labels": [*LABELS, "GEAR"]})
    result = play([("label_studio_project", {"title": title, "label_config": spaced}), more, more])
    assert not result[0]["changed"] and not result[0].get("failed"), result[0]
    assert result[1]["changed"], result[1]
    assert '<Label value="GEAR"/>' in result[1]["diff"]["after"]
    assert '<Label value="GEAR"/>' not in result[1]["diff"]["before"]
    assert not result[2]["changed"]

    absent = ("label_studio_project", {"title": title, "state": "absent"})
    checked = play([absent], check=True)[0]
    assert checked["changed"] and checked["deleted"] == [project_id]
    assert len(projects_titled(label_studio, title)) == 1
    result = play([absent, absent])
    assert result[0]["changed"] and result[0]["deleted"] == [project_id]
    assert not result[1]["changed"]
    assert projects_titled(label_studio, title) == []


def test_bad_labels_fail_naming_the_item_and_create_nothing(play, label_studio, title):
    result = play(
        [
            ("label_studio_project", {"title": title, "labels": ["VESSEL", {"value": "PORT", "colour": "red"}]}),
            ("label_studio_project", {"title": title, "labels": ["VESSEL", "PORT", "VESSEL"]}),
            ("label_studio_project", {"title": title, "labels": []}),
            ("label_studio_project", {"title": title, "label_config": "<View><Text name='t'"}),
        ]
    )
    assert result[0]["failed"] and "labels[1]" in result[0]["msg"] and "colour" in result[0]["msg"], result[0]
    assert result[1]["failed"] and "labels[2]" in result[1]["msg"] and "unique" in result[1]["msg"], result[1]
    assert result[2]["failed"] and "non-empty" in result[2]["msg"], result[2]
    assert result[3]["failed"] and "label_config" in result[3]["msg"], result[3]
    assert not any(r["changed"] for r in result.results)
    assert projects_titled(label_studio, title) == []


def test_ambiguous_title_fails_naming_the_ids(play, label_studio, title):
    ids = [label_studio.api("POST", "/api/projects/", {"title": title})[1]["id"] for _copy in range(2)]
    result = play(
        [
            ("label_studio_project", {"title": title, "labels": ["A"]}),
            ("label_studio_project", {"title": title, "state": "absent"}),
        ]
    )
    for step in result.results:
        assert step["failed"], step
        assert "2 projects titled" in step["msg"] and all(str(i) in step["msg"] for i in ids), step["msg"]
    assert len(projects_titled(label_studio, title)) == 2


# -- ML backends ---------------------------------------------------------------------------------------------


def test_ml_backend_connect_idempotent_update_and_remove(play, label_studio, ml_backend, title):
    backend = {"project": title, "backend_url": ml_backend.url, "title": "fake"}
    result = play(
        [
            ("label_studio_project", {"title": title, "labels": LABELS}),
            ("label_studio_ml_backend", backend),
            ("label_studio_ml_backend", backend),
        ]
    )
    project_id = result[0]["project"]["id"]
    created, again = result[1], result[2]
    assert created["changed"] and not created.get("failed"), created
    assert created["ml_backend"]["state"] == "CO" and created["ml_backend"]["model_version"] == "fake-v1", created
    assert not again["changed"] and again["ml_backend"]["id"] == created["ml_backend"]["id"], again
    assert "diff" in created

    # An update (PATCH with the full object) and check mode
    changed = dict(backend, title="renamed", is_interactive=True, timeout=12.5)
    checked = play([("label_studio_ml_backend", changed)], check=True)[0]
    assert checked["changed"] and checked["ml_backend"]["title"] == "renamed", checked
    status, backends = label_studio.api("GET", f"/api/ml/?project={project_id}")
    assert [b["title"] for b in backends] == ["fake"]
    result = play([("label_studio_ml_backend", changed), ("label_studio_ml_backend", changed)])
    assert result[0]["changed"] and result[0]["ml_backend"]["state"] == "CO", result[0]
    assert result[0]["diff"]["before"]["title"] == "fake" and result[0]["diff"]["after"]["title"] == "renamed"
    assert not result[1]["changed"], result[1]
    status, backends = label_studio.api("GET", f"/api/ml/?project={project_id}")
    assert [(b["title"], b["is_interactive"], b["timeout"]) for b in backends] == [("renamed", True, 12.5)]

    # Label Studio's own webhook for the backend is there; absent removes the backend and it.
    hook = ml_backend.url + "/webhook"
    assert any(h["url"] == hook for h in label_studio.api("GET", f"/api/webhooks/?project={project_id}")[1])
    absent = dict(backend, state="absent")
    result = play([("label_studio_ml_backend", absent), ("label_studio_ml_backend", absent)])
    assert result[0]["changed"] and result[0]["deleted"] == [created["ml_backend"]["id"]], result[0]
    assert not result[1]["changed"]
    assert label_studio.api("GET", f"/api/ml/?project={project_id}")[1] == []
    assert not any(h["url"] == hook for h in label_studio.api("GET", f"/api/webhooks/?project={project_id}")[1])


def test_unreachable_ml_backend_fails_with_label_studios_reason(play, label_studio, title):
    down = unused_url()
    result = play(
        [
            ("label_studio_project", {"title": title, "labels": LABELS}),
            ("label_studio_ml_backend", {"project": title, "backend_url": down}),
            ("label_studio_ml_backend", {"project": "no such project " + title, "backend_url": down}),
            ("label_studio_ml_backend", {"project": title, "backend_url": "http://nowhere.invalid:9090"}),
        ]
    )
    failed = result[1]
    assert failed["failed"] and not failed["changed"], failed
    assert "Can't connect to ML backend" in failed["msg"] and down in failed["msg"], failed["msg"]
    assert label_studio.url in failed["msg"] and "<a " not in failed["msg"]
    assert failed["status"] == 400 and "non_field_errors" in failed["validation_errors"]
    project_id = result[0]["project"]["id"]
    assert label_studio.api("GET", f"/api/ml/?project={project_id}")[1] == []
    assert result[2]["failed"] and "no project titled" in result[2]["msg"], result[2]
    # An unknown host: Label Studio answers 500 and says so.
    assert result[3]["failed"] and not result[3]["changed"], result[3]
    assert "nowhere.invalid" in result[3]["msg"] and result[3]["status"] in (400, 500), result[3]["msg"]
    assert label_studio.api("GET", f"/api/ml/?project={project_id}")[1] == []


# -- webhooks ------------------------------------------------------------------------------------------------


def test_webhook_create_idempotent_actions_headers_and_remove(play, label_studio, ml_backend, title):
    sink = "http://127.0.0.1:9/ingest"
    hook = {"project": title, "webhook_url": sink, "actions": ["TASKS_CREATED"], "headers": {"X-Sink": "s3cr3t"}}
    result = play(
        [
            ("label_studio_project", {"title": title, "labels": LABELS}),
            ("label_studio_ml_backend", {"project": title, "backend_url": ml_backend.url}),
            ("label_studio_webhook", hook),
            ("label_studio_webhook", hook),
        ]
    )
    project_id = result[0]["project"]["id"]
    created, again = result[2], result[3]
    assert created["changed"] and not created.get("failed"), created
    assert created["webhook"]["actions"] == ["TASKS_CREATED"] and not created["webhook"]["send_for_all_actions"]
    assert "s3cr3t" not in str(created)
    assert not again["changed"], again

    def stored():
        hooks = label_studio.api("GET", f"/api/webhooks/?project={project_id}")[1]
        return {h["url"]: h for h in hooks}

    assert stored()[sink]["headers"] == {"X-Sink": "s3cr3t"}
    # The ML backend's own webhook is not ours and stays as it is.
    assert stored()[ml_backend.url + "/webhook"]["send_for_all_actions"] is True

    # More actions, other header value, then all actions: each a change, the full list sent every time.
    more = dict(hook, actions=["TASKS_CREATED", "ANNOTATION_CREATED"], headers={"X-Sink": "other"})
    checked = play([("label_studio_webhook", more)], check=True)[0]
    assert checked["changed"] and stored()[sink]["actions"] == ["TASKS_CREATED"]
    result = play([("label_studio_webhook", more), ("label_studio_webhook", more)])
    assert result[0]["changed"] and not result[1]["changed"], result.results
    assert sorted(stored()[sink]["actions"]) == ["ANNOTATION_CREATED", "TASKS_CREATED"]
    assert stored()[sink]["headers"] == {"X-Sink": "other"}
    every = dict(hook, actions=[], send_payload=False)
    result = play([("label_studio_webhook", every), ("label_studio_webhook", every)])
    assert result[0]["changed"] and not result[1]["changed"], result.results
    assert stored()[sink]["send_for_all_actions"] is True and stored()[sink]["send_payload"] is False

    # Organization-only and unknown actions are refused before anything is sent.
    result = play(
        [
            ("label_studio_webhook", dict(hook, actions=["PROJECT_CREATED"])),
            ("label_studio_webhook", dict(hook, actions=["NOT_AN_ACTION"])),
        ]
    )
    assert result[0]["failed"] and "organization-only" in result[0]["msg"], result[0]
    assert result[1]["failed"] and "NOT_AN_ACTION" in result[1]["msg"], result[1]
    assert stored()[sink]["send_for_all_actions"] is True

    absent = dict(hook, state="absent")
    result = play([("label_studio_webhook", absent), ("label_studio_webhook", absent)])
    assert result[0]["changed"] and not result[1]["changed"], result.results
    assert sink not in stored() and ml_backend.url + "/webhook" in stored()


# -- tokens --------------------------------------------------------------------------------------------------


def test_personal_access_token_works_and_wrong_tokens_are_named_not_shown(play, label_studio, title):
    pat = label_studio.create_personal_access_token()
    project = ("label_studio_project", {"title": title, "labels": LABELS})
    result = play([project, project], token=pat)
    assert result[0]["changed"] and not result[0].get("failed"), result[0]
    assert not result[1]["changed"], result[1]

    wrong_legacy = "0" * 40
    failed = play([project], token=wrong_legacy)[0]
    assert failed["failed"], failed
    assert label_studio.url in failed["msg"] and "legacy token" in failed["msg"] and "refused" in failed["msg"]
    assert wrong_legacy not in failed["msg"]

    # A well-formed personal access token that Label Studio does not know (signature broken).
    header, claims, signature = pat.split(".")
    forged = ".".join([header, claims, signature[::-1]])
    failed = play([project], token=forged)[0]
    assert failed["failed"] and "personal access token" in failed["msg"] and label_studio.url in failed["msg"]
    assert forged not in failed["msg"] and signature not in str(failed)


def test_tokens_do_not_appear_at_vvv(play, label_studio, title):
    pat = label_studio.create_personal_access_token()
    project = ("label_studio_project", {"title": title, "labels": LABELS})
    webhook = (
        "label_studio_webhook",
        {"project": title, "webhook_url": "http://127.0.0.1:9/x", "headers": {"X-Secret": "hdr-s3cr3t"}},
    )
    for token in (label_studio.token, pat):
        out = play([project, webhook], token=token, verbosity=3, json_output=False)
        text = out.stdout + out.stderr
        assert "changed=" in text and "failed=0" in text, text[-3000:]
        assert token not in text
        assert "hdr-s3cr3t" not in text
        assert pat.split(".")[2] not in text
