# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Render and parse the model sources in ``triton-models/`` the way the triton_server role deploys them.

``render_config`` renders a model's ``config.pbtxt.j2`` with plain Jinja2 set up like ansible's
template module (``trim_blocks``; undefined variables are errors); ``parse_config`` parses the result
with protobuf's text-format parser into Triton's ``ModelConfig`` message (from tritonclient), which
rejects unknown fields, wrong types and bad enum values just as tritonserver's own parser does.
``install_model`` lays a model out in a repository: the rendered ``config.pbtxt`` and the numeric
version directories, nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "triton-models"
TEMPLATE_NAME = "config.pbtxt.j2"

# The variables the role passes to every template (the contract with roles/triton_server).
TEMPLATE_VARIABLES = frozenset(
    {
        "triton_model_name",
        "triton_model_instance_kind",
        "triton_model_gpus",
        "triton_model_instance_count",
        "triton_model_max_batch_size",
        "triton_model_parameters",
    }
)
# Variables a single template may read in addition (with a default).
OPTIONAL_VARIABLES = {"distilbert-base-uncased": frozenset({"triton_model_num_versions"})}


def model_dirs() -> list[Path]:
    """Every model source directory (one with a config.pbtxt.j2)."""
    return sorted(path.parent for path in MODELS_DIR.glob(f"*/{TEMPLATE_NAME}"))


def environment(loader_dir: Path | None = None) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(loader_dir)) if loader_dir else None
    return jinja2.Environment(
        loader=loader, trim_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )


def variables_used(model_dir: Path) -> set[str]:
    """The undeclared variables the template reads (jinja2.meta)."""
    from jinja2 import meta  # pylint: disable=import-outside-toplevel

    env = environment()
    return set(meta.find_undeclared_variables(env.parse((model_dir / TEMPLATE_NAME).read_text(encoding="utf-8"))))


def render_config(model_dir: Path, **variables) -> str:
    return environment(model_dir).get_template(TEMPLATE_NAME).render(**variables)


def parse_config(text: str):
    """A ``tritonclient.grpc.model_config_pb2.ModelConfig``; raises text_format.ParseError on a bad config."""
    from google.protobuf import text_format  # pylint: disable=import-outside-toplevel
    from tritonclient.grpc import model_config_pb2  # pylint: disable=import-outside-toplevel

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def install_model(model_dir: Path, repository: Path, **variables) -> Path:
    """Render the config into ``repository/<triton_model_name>/`` and copy the version directories."""
    name = variables.get("triton_model_name", model_dir.name)
    dest = Path(repository) / name
    dest.mkdir(parents=True, exist_ok=True)
    for version in model_dir.iterdir():
        if version.is_dir() and version.name.isdigit():
            shutil.copytree(
                version, dest / version.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
    (dest / "config.pbtxt").write_text(
        render_config(model_dir, **{"triton_model_name": name, **variables}), encoding="utf-8"
    )
    return dest
