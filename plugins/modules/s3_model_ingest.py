#!/usr/bin/python
# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: s3_model_ingest
short_description: Upload a model directory to S3 with a verifiable manifest
version_added: 0.1.0
description:
  - Uploads a local model directory to C(models/<key>/) in a bucket (multipart for files larger than O(part_size);
    each part is signed with its SHA-256, so the server rejects bytes damaged on the way), skipping files whose
    content is already there.
  - Writes the manifest C(manifests/models/<key>.json) last (per file, the relative path, size, SHA-256, and the
    SHA-256 of each O(part_size) part; plus key, label and tags), so a reader never finds a manifest whose files
    are missing. M(oceanid.fleet.s3_model_hydrate) verifies every byte against it.
  - Idempotent; an unchanged directory uploads nothing and rewrites nothing.
author:
  - Oceanid fleet maintainers (@oceanid)
extends_documentation_fragment: [oceanid.fleet.s3, ansible.builtin.action_common_attributes, oceanid.fleet.action_group]
attributes:
  check_mode:
    details: Hashes the files and reports what would be uploaded, without writing to the bucket.
  diff_mode:
    support: none
options:
  src:
    description: The model directory on the host the module runs on.
    type: path
    required: true
  model_key:
    description:
      - The model's key in the bucket (C(models/<model_key>/), C(manifests/models/<model_key>.json)).
      - For a numbered version that the model puller picks up, use C(<key>/<n>), for example C(ner-distilbert/3).
    type: str
    required: true
  label:
    description: A human-readable name recorded in the manifest (default O(model_key)).
    type: str
  tags:
    description: Free-form tags recorded in the manifest, for example the workload and the model format.
    type: dict
    default: {}
  part_size:
    description: Bytes per multipart part and per verified part in the manifest (at least 5 MiB, S3's minimum).
    type: int
    default: 8388608
  create_bucket:
    description:
      - Create O(bucket) when it does not exist (a new fleet's first publish). In check mode, reported as a change.
      - When false, a missing bucket fails the task with a message naming it.
    type: bool
    default: false
seealso:
  - module: oceanid.fleet.s3_model_hydrate
"""

EXAMPLES = r"""
- name: Publish a trained model
  oceanid.fleet.s3_model_ingest:
    endpoint_url: http://seaweed1:8333
    bucket: assets
    src: /srv/train/out/ner-distilbert
    model_key: ner-distilbert
    label: NER DistilBERT (vessels)
    tags:
      workload: ner
      format: onnx
"""

RETURN = r"""
bucket_created:
  description: Whether the bucket was created (or, in check mode, would be).
  returned: always
  type: bool
uploaded:
  description: Relative paths uploaded.
  returned: always
  type: list
  elements: str
skipped:
  description: Relative paths already in the bucket with the same content.
  returned: always
  type: list
  elements: str
bytes_uploaded:
  description: Bytes uploaded.
  returned: always
  type: int
manifest_key:
  description: Key of the manifest.
  returned: always
  type: str
  sample: manifests/models/ner-distilbert.json
seconds:
  description: Wall time.
  returned: always
  type: float
"""

from ansible_collections.oceanid.fleet.plugins.module_utils.model_manifest import DEFAULT_PART_SIZE
from ansible_collections.oceanid.fleet.plugins.module_utils.s3_args import fail, run_transfer, s3_module
from ansible_collections.oceanid.fleet.plugins.module_utils.s3_model_upload import ingest


def main():
    module = s3_module(
        {
            "src": {"type": "path", "required": True},
            "model_key": {"type": "str", "required": True, "no_log": False},
            "label": {"type": "str"},
            "tags": {"type": "dict", "default": {}},
            "part_size": {"type": "int", "default": DEFAULT_PART_SIZE},
            "create_bucket": {"type": "bool", "default": False},
        }
    )
    params = module.params
    segments = params["model_key"].strip("/").split("/")
    if not all(segments) or any(segment in (".", "..") for segment in segments):
        fail(
            module,
            "model_key %r must be a key such as ner-distilbert, or ner-distilbert/3 for a numbered version"
            % params["model_key"],
        )
    result = run_transfer(
        module,
        ingest,
        params["src"],
        None,
        "reading",
        model_key=params["model_key"].strip("/"),
        label=params["label"],
        tags=params["tags"],
        part_size=params["part_size"],
        create_bucket=params["create_bucket"],
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
