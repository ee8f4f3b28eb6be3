# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triton Python-backend model that runs an ONNX file with ONNX Runtime.

For hosts whose tritonserver has no onnxruntime backend (the lab's native runtime from the
nvidia-pytriton wheel has only the Python backend). The ONNX file is ``model.onnx`` (or the
``model_file`` parameter) in this version directory; each ONNX input is fed from the Triton input
of the same name, and every output listed in the model configuration is returned. Instances of
kind GPU use onnxruntime's CUDA execution provider on their GPU when the installed onnxruntime
has it, otherwise the CPU.
"""

import json
import os

import onnxruntime
import triton_python_backend_utils as pb_utils


def _error_response(message):
    """An error response (HTTP 400) for one request; the other requests are unaffected."""
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(output_tensors=[], error=error)


class TritonPythonModel:
    """One instance per ``instance_group`` entry; Triton calls initialize, execute, finalize."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], params.get("model_file") or "model.onnx")
        options = onnxruntime.SessionOptions()
        if params.get("intra_op_num_threads"):
            options.intra_op_num_threads = int(params["intra_op_num_threads"])
        providers = ["CPUExecutionProvider"]
        if (
            args.get("model_instance_kind") == "GPU"
            and "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        ):
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(args["model_instance_device_id"])}))
        self.session = onnxruntime.InferenceSession(path, sess_options=options, providers=providers)
        self.input_names = [item.name for item in self.session.get_inputs()]
        onnx_outputs = {item.name for item in self.session.get_outputs()}
        self.outputs = [(item["name"], pb_utils.triton_string_to_numpy(item["data_type"])) for item in config["output"]]
        unknown = sorted({name for name, _dtype in self.outputs} - onnx_outputs)
        if unknown:
            raise pb_utils.TritonModelException(
                "%s: outputs %s are not outputs of the ONNX model (it has %s)"
                % (path, ", ".join(unknown), ", ".join(sorted(onnx_outputs)))
            )

    def execute(self, requests):
        responses = []
        for request in requests:
            tensors = {name: pb_utils.get_input_tensor_by_name(request, name) for name in self.input_names}
            missing = [name for name, tensor in tensors.items() if tensor is None]
            if missing:
                responses.append(_error_response("input(s) %s required by the ONNX model" % ", ".join(missing)))
                continue
            feeds = {name: tensor.as_numpy() for name, tensor in tensors.items()}
            try:
                results = self.session.run([name for name, _dtype in self.outputs], feeds)
            except (
                onnxruntime.capi.onnxruntime_pybind11_state.Fail,
                onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument,
            ) as exc:
                responses.append(_error_response("onnxruntime could not run the request: %s" % exc))
                continue
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor(name, result.astype(dtype, copy=False))
                        for (name, dtype), result in zip(self.outputs, results, strict=True)
                    ]
                )
            )
        return responses

    def finalize(self):
        self.session = None
