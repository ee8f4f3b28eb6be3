#!/usr/bin/python
# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


DOCUMENTATION = r"""
module: s3_model_hydrate
short_description: Copy a model from S3 to a local directory, verified and published atomically
version_added: 0.1.0
description:
  - Makes O(dest) an exact copy of a model stored in S3 or an S3-compatible server, as written by
    M(oceanid.fleet.s3_model_ingest) (files under C(models/<key>/), manifest at C(manifests/models/<key>.json)),
    or of any prefix without a manifest.
  - Every byte is verified against the manifest's SHA-256 digests while it streams (per part, so parts can
    arrive in any order). A file that does not match fails the task, names the file and both digests, and
    leaves O(dest) exactly as it was.
  - The new tree is built beside O(dest) (unchanged files are hard-linked, not copied), synced, and swapped in
    with one atomic rename, so a reader (Triton) sees the old tree or the new one, never a mix.
  - An unchanged model costs one HEAD request and no GET. An interrupted download resumes; parts already on
    disk whose bytes match the manifest are not fetched again.
  - Free space is checked before anything is written, on the filesystem that will hold the files.
  - O(dest) must not be a mount point, nor hold one (the new tree is swapped in with one rename, which a mount
    point cannot take part in); such a O(dest) is refused before anything is written. To hydrate onto a volume
    of its own, mount it one level up and give a directory inside it, for example C(<mount>/<model>).
author:
  - Oceanid fleet maintainers (@oceanid)
extends_documentation_fragment: [oceanid.fleet.s3, ansible.builtin.action_common_attributes, oceanid.fleet.action_group]
attributes:
  check_mode:
    details: Reports the plan (files and bytes to fetch, files to delete) without touching O(dest).
  diff_mode:
    support: full
options:
  model_key:
    description:
      - The model's key. Files come from C(models/<model_key>/), checked against C(manifests/models/<model_key>.json).
      - Mutually exclusive with O(prefix).
    type: str
  prefix:
    description:
      - A prefix to copy without a manifest (for example C(models/bert/3/)). Sizes and ETags are the only check
        (MD5 for objects uploaded in one piece), and the result says so in RV(verification).
      - Mutually exclusive with O(model_key).
    type: str
  dest:
    description:
      - The directory to publish the model to; not a mount point. Its parent must be on a filesystem with room for
        the files to fetch.
      - Hidden siblings C(.<name>.oceanid-state.json) (what was published) and, during a transfer,
        C(.<name>.partial) and C(.<name>.staging-*) live beside it.
    type: path
    required: true
  delete_extra:
    description: Remove files in O(dest) that the source does not have. Without it they are kept.
    type: bool
    default: false
  part_size:
    description:
      - Bytes per verified part when the manifest does not say (prefix mode). The manifest's own part size is always used when present.
    type: int
seealso:
  - module: oceanid.fleet.s3_model_ingest
"""

EXAMPLES = r"""
- name: Put the NER model on the GPU host's NVMe
  oceanid.fleet.s3_model_hydrate:
    endpoint_url: http://seaweed1:8333
    bucket: assets
    model_key: ner-distilbert
    dest: /opt/triton/models/distilbert-base-uncased/3
    access_key: "{{ s3_access_key }}"
    secret_key: "{{ s3_secret_key }}"

- name: Copy a prefix from AWS S3 with the instance profile's credentials
  oceanid.fleet.s3_model_hydrate:
    region: us-east-2
    bucket: desineuron-assets
    prefix: models/granite/2/
    dest: /nvme/models/granite
    delete_extra: true
"""

RETURN = r"""
files_fetched:
  description: Number of files downloaded.
  returned: always
  type: int
bytes_fetched:
  description: Bytes downloaded (less than the files' size when a download resumed).
  returned: always
  type: int
files_kept:
  description: Files already in place and verified, not downloaded.
  returned: always
  type: int
files_deleted:
  description: Files removed because the source does not have them (O(delete_extra)).
  returned: always
  type: int
seconds:
  description: Wall time of the transfer.
  returned: always
  type: float
mb_per_s:
  description: Download rate in MB/s (10^6 bytes).
  returned: always
  type: float
verification:
  description: C(sha256) with a manifest; C(size+etag) without one (a weaker check).
  returned: always
  type: str
plan:
  description: What the run fetches and deletes (in check mode, what it would).
  returned: always
  type: dict
  contains:
    fetch:
      description: Relative paths to download.
      type: list
      elements: str
    delete:
      description: Relative paths to remove.
      type: list
      elements: str
    bytes:
      description: Bytes of the files to download.
      type: int
requests:
  description: Requests sent, by kind (GET, HEAD, LIST, ...).
  returned: always
  type: dict
"""

import os

from ansible_collections.oceanid.fleet.plugins.module_utils.s3_args import fail, run_transfer, s3_module
from ansible_collections.oceanid.fleet.plugins.module_utils.s3_model_transfer import hydrate


def main():
    module = s3_module(
        {
            "model_key": {"type": "str", "no_log": False},
            "prefix": {"type": "str"},
            "dest": {"type": "path", "required": True},
            "delete_extra": {"type": "bool", "default": False},
            "part_size": {"type": "int"},
        },
        mutually_exclusive=[("model_key", "prefix")],
        required_one_of=[("model_key", "prefix")],
    )
    params = module.params
    if params["part_size"] is not None and params["part_size"] < 1024:
        fail(module, "part_size must be at least 1024 bytes, got %d" % params["part_size"])
    dest = params["dest"]
    result = run_transfer(
        module,
        hydrate,
        dest,
        "%s was left as it was" % dest if os.path.lexists(dest) else "nothing was written to %s" % dest,
        "writing",
        model_key=params["model_key"],
        prefix=params["prefix"],
        delete_extra=params["delete_extra"],
        part_size=params["part_size"],
    )
    if module._diff:
        # Before: the files that go away; after: the files that arrive (new or replaced).
        result["diff"] = {
            "before": "".join("%s\n" % p for p in result["plan"]["delete"]),
            "after": "".join("%s\n" % p for p in result["plan"]["fetch"]),
            "before_header": "%s: removed" % dest,
            "after_header": "%s: fetched" % dest,
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
