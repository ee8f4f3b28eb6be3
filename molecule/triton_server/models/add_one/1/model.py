"""A scenario model: OUTPUT0 = INPUT0 + 1 (the verify step changes and breaks its config)."""

import numpy as np
import triton_python_backend_utils as pb_utils  # pylint: disable=import-error


class TritonPythonModel:
    """Adds one to every element."""

    def execute(self, requests):
        responses = []
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", (values + 1).astype(np.float32))]))
        return responses
