"""puller_demo: OUTPUT0 = INPUT0 * the factor in this version's factor.txt (a bad factor fails the load)."""

import os

import numpy as np
import triton_python_backend_utils as pb_utils  # pylint: disable=import-error


class TritonPythonModel:
    """Multiplies by the version's factor."""

    def initialize(self, args):
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        with open(os.path.join(version_dir, "factor.txt"), encoding="utf-8") as handle:
            self.factor = float(handle.read())  # ValueError for a broken version: Triton marks it UNAVAILABLE

    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(
                pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", (values * self.factor).astype(np.float32))])
            )
        return responses
