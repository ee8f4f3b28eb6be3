"""The model sources in triton-models/: templates render to configurations that Triton's own ModelConfig accepts.

Parsing uses protobuf's text-format parser on ``tritonclient.grpc.model_config_pb2.ModelConfig`` (the
message tritonserver parses config.pbtxt into), so an unknown field, a misspelt enum or a bad type
fails here as it would fail at load time. One test also renders every template through ansible's
own template module, to prove that the templates are what the triton_server role will produce.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.support.triton_models import (
    MODELS_DIR,
    OPTIONAL_VARIABLES,
    TEMPLATE_VARIABLES,
    model_dirs,
    parse_config,
    render_config,
    variables_used,
)

MODELS = [path.name for path in model_dirs()]
CPU = {
    "triton_model_instance_kind": "KIND_CPU",
    "triton_model_gpus": [],
    "triton_model_instance_count": 1,
    "triton_model_max_batch_size": 0,
    "triton_model_parameters": {},
}
# The seed fleet's pinning: distilbert on GPU0, docling on GPU1.
SEED_PINNING = {"distilbert-base-uncased": [0], "docling_granite_python": [1]}


def variables(model: str, **overrides) -> dict:
    return {**CPU, "triton_model_name": model, **overrides}


def load_make_model():
    spec = importlib.util.spec_from_file_location(
        "tiny_onnx_make_model", MODELS_DIR / "tiny_onnx_python" / "make_model.py"
    )
    module = importlib.util.module_from_spec(spec)
    write_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in triton-models/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = write_bytecode
    return module


def test_the_three_models_are_there():
    assert MODELS == ["distilbert-base-uncased", "docling_granite_python", "tiny_onnx_python"]


@pytest.mark.parametrize("model", MODELS)
def test_model_directory_layout(model):
    source = MODELS_DIR / model
    readme = (source / "README.md").read_text(encoding="utf-8")
    for variable in sorted(TEMPLATE_VARIABLES):
        assert variable in readme, f"{model}/README.md does not document {variable}"
    assert "curl" in readme
    assert not (source / "config.pbtxt").exists(), "the configuration is a template; the role renders it"
    if model == "distilbert-base-uncased":
        assert not [path for path in source.iterdir() if path.is_dir()], "versions come from the model puller"
    else:
        assert (source / "1" / "model.py").is_file()


@pytest.mark.parametrize("model", MODELS)
def test_template_reads_exactly_the_role_variables(model):
    assert variables_used(MODELS_DIR / model) == TEMPLATE_VARIABLES | OPTIONAL_VARIABLES.get(model, frozenset())


@pytest.mark.parametrize("model", MODELS)
def test_template_defaults_render_a_cpu_config(model):
    config = parse_config(render_config(MODELS_DIR / model))
    assert config.name == model
    assert [(group.kind, group.count, list(group.gpus)) for group in config.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_CPU, 1, [])
    ]
    assert not config.parameters


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(
    "kind, gpus, count, expected_gpus",
    [
        ("KIND_CPU", [], 1, []),
        ("KIND_CPU", [1], 2, []),  # gpus only mean something to a GPU instance group
        ("KIND_GPU", [], 1, []),  # no list: Triton puts an instance on every GPU
        ("KIND_GPU", [1], 1, [1]),
        ("KIND_GPU", [0, 2], 3, [0, 2]),
    ],
)
def test_instance_group(model, kind, gpus, count, expected_gpus):
    text = render_config(
        MODELS_DIR / model,
        **variables(model, triton_model_instance_kind=kind, triton_model_gpus=gpus, triton_model_instance_count=count),
    )
    config = parse_config(text)
    [group] = config.instance_group
    assert model_config_pb2.ModelInstanceGroup.Kind.Name(group.kind) == kind
    assert group.count == count
    assert list(group.gpus) == expected_gpus
    assert ("gpus:" in text) == bool(expected_gpus)


@pytest.mark.parametrize("model, gpus", sorted(SEED_PINNING.items()))
def test_seed_gpu_pinning(model, gpus):
    config = parse_config(
        render_config(
            MODELS_DIR / model, **variables(model, triton_model_instance_kind="KIND_GPU", triton_model_gpus=gpus)
        )
    )
    assert [list(group.gpus) for group in config.instance_group] == [gpus]
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU


@pytest.mark.parametrize("model", MODELS)
def test_name_and_parameters_are_rendered_from_variables(model):
    parameters = {"engine": "pypdf", "quoted": 'say "hi"', "path": "C:\\models\\x", "multi": "a\nb", "empty": ""}
    config = parse_config(
        render_config(MODELS_DIR / model, **variables("renamed-model", triton_model_parameters=parameters))
    )
    assert config.name == "renamed-model"
    assert {key: value.string_value for key, value in config.parameters.items()} == parameters


@pytest.mark.parametrize("model", ["distilbert-base-uncased", "tiny_onnx_python", "docling_granite_python"])
@pytest.mark.parametrize("max_batch_size", [0, 4])
def test_batch_dimension(model, max_batch_size):
    config = parse_config(
        render_config(MODELS_DIR / model, **variables(model, triton_model_max_batch_size=max_batch_size))
    )
    assert config.max_batch_size == max_batch_size
    shapes = {tensor.name: list(tensor.dims) for tensor in [*config.input, *config.output]}
    leading = [] if max_batch_size or model == "docling_granite_python" else [-1]
    expected = {
        "distilbert-base-uncased": {
            "input_ids": leading + [-1],
            "attention_mask": leading + [-1],
            "logits": leading + [-1, -1],
        },
        "tiny_onnx_python": {"x": leading + [4], "y": leading + [3]},
        "docling_granite_python": {"pdf_base64": [1], "prompt": [1], "result": [1]},
    }[model]
    assert shapes == expected


def test_distilbert_config():
    config = parse_config(render_config(MODELS_DIR / "distilbert-base-uncased", **variables("distilbert-base-uncased")))
    assert config.platform == "onnxruntime_onnx" and not config.backend
    assert config.version_policy.WhichOneof("policy_choice") == "latest"
    assert config.version_policy.latest.num_versions == 1
    types = {
        tensor.name: model_config_pb2.DataType.Name(tensor.data_type) for tensor in [*config.input, *config.output]
    }
    assert types == {"input_ids": "TYPE_INT64", "attention_mask": "TYPE_INT64", "logits": "TYPE_FP32"}
    kept = parse_config(
        render_config(
            MODELS_DIR / "distilbert-base-uncased", **variables("distilbert-base-uncased", triton_model_num_versions=2)
        )
    )
    assert kept.version_policy.latest.num_versions == 2


def test_docling_config():
    config = parse_config(render_config(MODELS_DIR / "docling_granite_python", **variables("docling_granite_python")))
    assert config.backend == "python" and config.max_batch_size == 0
    assert [(tensor.name, tensor.data_type, tensor.optional) for tensor in config.input] == [
        ("pdf_base64", model_config_pb2.TYPE_STRING, False),
        ("prompt", model_config_pb2.TYPE_STRING, True),
    ]
    assert [(tensor.name, tensor.data_type) for tensor in config.output] == [("result", model_config_pb2.TYPE_STRING)]


def test_parser_is_a_real_validator():
    good = render_config(MODELS_DIR / "tiny_onnx_python", **variables("tiny_onnx_python"))
    with pytest.raises(text_format.ParseError):
        parse_config(good.replace("kind: KIND_CPU", "kind: KIND_TPU"))
    with pytest.raises(text_format.ParseError):
        parse_config(good + "\nmax_batch: 3\n")


def test_tiny_onnx_model_is_the_generated_one():
    make_model = load_make_model()
    committed = (MODELS_DIR / "tiny_onnx_python" / "1" / "model.onnx").read_bytes()
    assert make_model.model_bytes() == committed, "run: .venv/bin/python triton-models/tiny_onnx_python/make_model.py"
    import onnx  # pylint: disable=import-outside-toplevel

    model = onnx.load_from_string(committed)
    assert model.ir_version == make_model.IR_VERSION == 8
    assert [(opset.domain, opset.version) for opset in model.opset_import] == [("", 17)]


def test_tiny_onnx_model_runs_in_onnxruntime():
    import onnxruntime  # pylint: disable=import-outside-toplevel

    make_model = load_make_model()
    session = onnxruntime.InferenceSession(
        str(MODELS_DIR / "tiny_onnx_python" / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    x = np.arange(-8, 12, dtype=np.float32).reshape(5, 4)
    [y] = session.run(["y"], {"x": x})
    expected = x @ np.array(make_model.WEIGHTS, dtype=np.float32) + np.array(make_model.BIAS, dtype=np.float32)
    assert y.dtype == np.float32 and y.tolist() == expected.tolist()


def test_templates_render_the_same_through_ansible(tmp_path, clean_ansible_env):
    """ansible's template module (the role's renderer, ansible's delimiters) gives the same text as plain Jinja2."""
    cases = []
    for model in MODELS:
        cases.append(
            {
                "src": str(MODELS_DIR / model / "config.pbtxt.j2"),
                "dest": str(tmp_path / f"{model}.pbtxt"),
                "vars": variables(
                    f"{model}-x",
                    triton_model_instance_kind="KIND_GPU",
                    triton_model_gpus=SEED_PINNING.get(model, [0]),
                    triton_model_max_batch_size=2,
                    triton_model_parameters={"engine": "pypdf", "quoted": 'a "b" \\ c'},
                ),
            }
        )
    (tmp_path / "cases.json").write_text(json.dumps({"cases": cases}), encoding="utf-8")
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.template:\n        src: '{{ item.src }}'\n        dest: '{{ item.dest }}'\n        mode: '0644'\n"
        "      vars:\n        triton_model_name: '{{ item.vars.triton_model_name }}'\n"
        "        triton_model_instance_kind: '{{ item.vars.triton_model_instance_kind }}'\n"
        "        triton_model_gpus: '{{ item.vars.triton_model_gpus }}'\n"
        "        triton_model_instance_count: '{{ item.vars.triton_model_instance_count }}'\n"
        "        triton_model_max_batch_size: '{{ item.vars.triton_model_max_batch_size }}'\n"
        "        triton_model_parameters: '{{ item.vars.triton_model_parameters }}'\n"
        "      loop: '{{ cases }}'\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            f"@{tmp_path / 'cases.json'}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=clean_ansible_env,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for case in cases:
        rendered = Path(case["dest"]).read_text(encoding="utf-8")
        assert rendered == render_config(Path(case["src"]).parent, **case["vars"])
        config = parse_config(rendered)
        assert config.name == case["vars"]["triton_model_name"]
        assert list(config.instance_group[0].gpus) == case["vars"]["triton_model_gpus"]
        assert config.parameters["quoted"].string_value == 'a "b" \\ c'
