# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write ``1/model.onnx``: y = x @ WEIGHTS + BIAS, x FP32 [batch, 4], y FP32 [batch, 3].

Run from the repository root with the project's virtualenv (needs the ``onnx`` package):

    .venv/bin/python triton-models/tiny_onnx_python/make_model.py

The output is byte-for-byte reproducible, and the committed ``1/model.onnx`` is this script's
output (tests/unit/triton_models checks it). Every weight is a small dyadic fraction, so the
results of integer-valued inputs are exact in float32 whatever the summation order.
IR version 8 / opset 17 are old enough for every onnxruntime from 1.13 on, including the one in
the official Triton images, and for onnxruntime 1.31 that runs it here.
"""

import os
import sys

IR_VERSION = 8
OPSET = 17
INPUT_NAME = "x"
OUTPUT_NAME = "y"
WEIGHTS = [
    [1.0, 0.0, 2.0],
    [0.0, 1.0, -1.0],
    [0.5, 0.25, 0.0],
    [-1.0, 2.0, 3.0],
]
BIAS = [1.0, -2.0, 0.5]


def build_model():
    """The ModelProto; imports onnx here so that the constants above can be read without it."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from onnx import TensorProto, checker, helper, numpy_helper  # pylint: disable=import-outside-toplevel

    weights = numpy_helper.from_array(np.array(WEIGHTS, dtype=np.float32), name="W")
    bias = numpy_helper.from_array(np.array(BIAS, dtype=np.float32), name="B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [INPUT_NAME, "W"], ["xw"], name="matmul"),
            helper.make_node("Add", ["xw", "B"], [OUTPUT_NAME], name="add"),
        ],
        "tiny_affine",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", len(WEIGHTS)])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", len(BIAS)])],
        initializer=[weights, bias],
    )
    model = helper.make_model(
        graph, producer_name="oceanid.fleet", producer_version="1", opset_imports=[helper.make_opsetid("", OPSET)]
    )
    model.ir_version = IR_VERSION
    checker.check_model(model, full_check=True)
    return model


def model_bytes():
    return build_model().SerializeToString(deterministic=True)


def main(argv):
    target = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "1", "model.onnx")
    data = model_bytes()
    tmp = target + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    print("wrote %s (%d bytes)" % (target, len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
