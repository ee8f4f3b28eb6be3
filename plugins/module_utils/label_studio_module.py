# Copyright: (c) 2026, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the label_studio_* modules share beyond the client (label_studio.py): the client built from the common
options, the project named by the ``project`` option, failures with Label Studio's details, and the flow of a module
that manages one object of a project by its URL (ML backends, webhooks).
"""

from ansible_collections.oceanid.fleet.plugins.module_utils.label_studio import LabelStudioClient, LabelStudioError


def client_from_module(module):
    """A LabelStudioClient from the common options, or fail_json naming the bad option."""
    params = module.params
    try:
        return LabelStudioClient(
            params["url"],
            params["api_token"],
            timeout=params["request_timeout"],
            validate_certs=params["validate_certs"],
        )
    except ValueError as exc:
        module.fail_json(msg="%s (Label Studio at %s)" % (exc, params["url"]))
    return None  # not reached


def resolve_project_for_module(module, client):
    """The project named by the ``project`` option, or None in check mode when it does not exist (yet).

    Outside check mode a missing or ambiguous project fails the module. In check mode a project that a previous
    task would create is missing; the caller then reports the change it would make, with a warning.
    """
    try:
        return client.resolve_project(module.params["project"])
    except LabelStudioError as exc:
        if module.check_mode and exc.status == 404:
            module.warn("%s; check mode assumes an earlier task creates it" % exc)
            return None
        module.fail_json(msg=str(exc), status=exc.status)
    return None  # not reached


def fail_from_error(module, exc, what, **result):
    """fail_json with ``what`` (e.g. "creating the ML backend ...") and Label Studio's error, its status and details."""
    result["changed"] = False  # Label Studio validates before it saves: a refused request changed nothing
    module.fail_json(
        msg="%s: %s" % (what, exc),
        status=exc.status,
        detail=exc.detail,
        validation_errors=exc.validation_errors,
        **result,
    )


class ProjectObjectRunner:
    """The flow of a module that manages one object of a project, matched by its URL (ML backends, webhooks).

    Checks the URL option, resolves the project (None in check mode when an earlier task would create it), lists the
    project's objects with that URL, deletes them (``absent``) or hands the first to ``present``. Subclasses set
    ``kind``, ``url_option`` and ``result_key`` and implement ``list_objects``, ``delete_object``, ``shown`` (the
    object as returned and diffed), ``planned`` (what ``present`` would make, for check mode without a project) and
    ``present``; ``check_input`` runs before the project is looked up. ``self.result`` is what the module returns.
    """

    kind = "object"
    url_option = "url"
    result_key = "object"

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.url = self.params[self.url_option]
        self.where = "%s %s" % (self.kind, self.url)
        self.result = {"changed": False, self.result_key: {}, "project_id": None, "deleted": []}
        self.client = None
        self.project_id = None

    def fail(self, message):
        self.module.fail_json(msg="%s: %s" % (self.where, message), **self.result)

    def matches(self, item):
        return item.get("url") == self.url

    def check_input(self):
        """Input checks that need the client but not the project."""

    def after_delete(self):
        """Clean-up after the objects were deleted."""

    def run(self):
        if not self.url.startswith(("http://", "https://")):
            self.fail("%s must start with http:// or https://" % self.url_option)
        self.client = client_from_module(self.module)
        try:
            self.check_input()
            project = resolve_project_for_module(self.module, self.client)
            if project is None:  # check mode, the project is not there yet
                if self.params["state"] == "present":
                    planned = self.planned()
                    self.result.update(changed=True, diff={"before": {}, "after": planned})
                    self.result[self.result_key] = planned
                return self.result
            self.project_id = project["id"]
            self.where += " of project %s (%r)" % (self.project_id, project.get("title"))
            self.result["project_id"] = self.project_id
            found = [item for item in self.list_objects() if self.matches(item)]
            if self.params["state"] == "absent":
                self.absent(found)
            else:
                if len(found) > 1:
                    self.module.warn(
                        "%s: %d with this URL (ids %s); managing id %s"
                        % (self.where, len(found), ", ".join(str(item["id"]) for item in found), found[0]["id"])
                    )
                self.present(found[0] if found else None)
        except LabelStudioError as exc:
            fail_from_error(self.module, exc, self.where, **self.result)
        return self.result

    def absent(self, found):
        if not found:
            return
        self.result.update(changed=True, deleted=[item["id"] for item in found])
        self.result["diff"] = {"before": self.shown(found[0]), "after": {}}
        if not self.module.check_mode:
            for item in found:
                self.delete_object(item)
            self.after_delete()

    # -- for the subclasses ----------------------------------------------------------------------------------

    def list_objects(self):
        raise NotImplementedError

    def delete_object(self, item):
        raise NotImplementedError

    def shown(self, item):
        raise NotImplementedError

    def planned(self):
        raise NotImplementedError

    def present(self, current):
        raise NotImplementedError
