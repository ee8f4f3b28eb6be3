# Copyright: (c) 2025, Oceanid fleet maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Triton Python-backend model: a base64 PDF in, its text (and which engine read it) out as JSON.

Engines, chosen once per model instance from the ``engine`` parameter (default ``auto``):

* ``docling``: Docling's DocumentConverter, Markdown out. ``docling_pipeline=standard`` (default)
  is Docling's layout/table pipeline; ``docling_pipeline=vlm`` is its vision-language pipeline,
  whose default model is IBM Granite Docling. An instance of kind GPU runs it on its own GPU
  (``cuda:<device id>``), which is how ``instance_group.gpus`` pins the model.
* ``pypdf``: the text layer of the PDF through pypdf, plain text out. No layout analysis, no OCR.
* ``auto``: ``docling`` when it can be imported, else ``pypdf``.

Nothing here summarises: ``prompt`` is returned as it came, ``summary`` is always null; a
generative step belongs to the caller. Each request may carry a batch (``max_batch_size`` > 0);
one bad document fails its whole request, with a message that names the document.
"""

import base64
import binascii
import importlib.util
import io
import json

import numpy as np
import triton_python_backend_utils as pb_utils

ENGINES = ("auto", "docling", "pypdf")
DOCLING_PIPELINES = ("standard", "vlm")
PDF_MAGIC = b"%PDF-"


class RequestError(Exception):
    """A problem with one request's data: becomes that request's error response (HTTP 400)."""


def decode_pdf(value):
    """The PDF bytes of one ``pdf_base64`` element (whitespace, as in wrapped base64, is ignored)."""
    if isinstance(value, str):
        value = value.encode("utf-8", "replace")
    try:
        data = base64.b64decode(b"".join(bytes(value).split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError("pdf_base64 is not valid base64 (%s)" % exc) from None
    if PDF_MAGIC not in data[:1024]:
        raise RequestError(
            "pdf_base64 does not decode to a PDF: no %r header in its first 1024 bytes (it starts with %r)"
            % (PDF_MAGIC.decode(), data[:16])
        )
    return data


def read_with_pypdf(data):
    from pypdf import PdfReader  # pylint: disable=import-outside-toplevel

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise RequestError("the PDF is encrypted with a password")
        texts = [page.extract_text() or "" for page in reader.pages]
    except RequestError:
        raise
    except Exception as exc:  # pylint: disable=broad-except  # pypdf raises many types on malformed input
        raise RequestError("pypdf could not read the PDF: %s: %s" % (type(exc).__name__, exc)) from None
    return {"engine": "pypdf", "format": "text", "pages": len(texts), "text": "\n\n".join(texts)}


def docling_converter(pipeline, device):
    """A Docling DocumentConverter for PDFs, its models loaded; raises ImportError when Docling is not installed."""
    # pylint: disable=import-outside-toplevel,import-error
    from docling.datamodel.base_models import InputFormat
    from docling.document_converter import DocumentConverter, PdfFormatOption

    try:
        from docling.datamodel.accelerator_options import AcceleratorOptions
    except ImportError:  # Docling before 2.37
        from docling.datamodel.pipeline_options import AcceleratorOptions
    accelerator = AcceleratorOptions(device=device)
    if pipeline == "vlm":
        from docling.datamodel.pipeline_options import VlmPipelineOptions
        from docling.pipeline.vlm_pipeline import VlmPipeline

        option = PdfFormatOption(
            pipeline_cls=VlmPipeline, pipeline_options=VlmPipelineOptions(accelerator_options=accelerator)
        )
    else:
        from docling.datamodel.pipeline_options import PdfPipelineOptions

        option = PdfFormatOption(pipeline_options=PdfPipelineOptions(accelerator_options=accelerator))
    converter = DocumentConverter(format_options={InputFormat.PDF: option})
    converter.initialize_pipeline(InputFormat.PDF)  # load the models now: a broken setup fails the load, not a request
    return converter


class TritonPythonModel:
    """One instance per ``instance_group`` entry; Triton calls initialize, execute, finalize."""

    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {key: value.get("string_value", "") for key, value in config.get("parameters", {}).items()}
        engine = params.get("engine") or "auto"
        pipeline = params.get("docling_pipeline") or "standard"
        if engine not in ENGINES or pipeline not in DOCLING_PIPELINES:
            raise pb_utils.TritonModelException(
                "parameter engine must be one of %s and docling_pipeline one of %s, not %r and %r"
                % ("/".join(ENGINES), "/".join(DOCLING_PIPELINES), engine, pipeline)
            )
        self.converter = None
        if engine != "pypdf":
            gpu = args.get("model_instance_kind") == "GPU"
            device = "cuda:%d" % int(args["model_instance_device_id"]) if gpu else "cpu"
            try:
                self.converter = docling_converter(pipeline, device)
            except ImportError as exc:
                if engine == "docling":
                    raise pb_utils.TritonModelException(
                        "engine 'docling' was asked for, but Docling cannot be imported: %s" % exc
                    ) from exc
        self.engine = "docling" if self.converter is not None else "pypdf"
        if self.engine == "pypdf" and importlib.util.find_spec("pypdf") is None:
            raise pb_utils.TritonModelException("neither Docling nor pypdf can be imported: install one of them")

    def read(self, data):
        if self.converter is None:
            return read_with_pypdf(data)
        from docling.datamodel.base_models import DocumentStream  # pylint: disable=import-outside-toplevel,import-error

        try:
            document = self.converter.convert(DocumentStream(name="document.pdf", stream=io.BytesIO(data))).document
        except Exception as exc:  # pylint: disable=broad-except  # Docling's errors have no common base
            raise RequestError("Docling could not convert the PDF: %s: %s" % (type(exc).__name__, exc)) from None
        return {
            "engine": "docling",
            "format": "markdown",
            "pages": document.num_pages(),
            "text": document.export_to_markdown(),
        }

    def answer(self, request):
        pdfs = pb_utils.get_input_tensor_by_name(request, "pdf_base64").as_numpy()
        prompt_tensor = pb_utils.get_input_tensor_by_name(request, "prompt")
        prompts = prompt_tensor.as_numpy().reshape(-1) if prompt_tensor is not None else np.array([b""], dtype=object)
        if len(prompts) not in (1, pdfs.size):
            raise RequestError(
                "prompt must hold 1 element or one per document (%d), not %d" % (pdfs.size, len(prompts))
            )
        results = []
        for index, value in enumerate(pdfs.reshape(-1)):
            prompt = prompts[index if len(prompts) > 1 else 0]
            prompt = prompt.decode("utf-8", "replace") if isinstance(prompt, bytes) else str(prompt)
            try:
                result = self.read(decode_pdf(value))
            except RequestError as exc:
                raise RequestError("document %d: %s" % (index, exc) if pdfs.size > 1 else str(exc)) from None
            result.update(prompt=prompt, summary=None)
            results.append(json.dumps(result, ensure_ascii=False).encode("utf-8"))
        return np.array(results, dtype=object).reshape(pdfs.shape)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                output = pb_utils.Tensor("result", self.answer(request))
            except RequestError as exc:
                code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
                error = pb_utils.TritonError(str(exc)) if code is None else pb_utils.TritonError(str(exc), code)
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
                continue
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses

    def finalize(self):
        self.converter = None
