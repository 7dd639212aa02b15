"""tools/quiet_stderr.py: the demo drops TF's start-up log lines and nothing else."""

import importlib.util
import io
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location(
    "quiet_stderr", os.path.join(REPO, "tools", "quiet_stderr.py"))
quiet_stderr = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(quiet_stderr)

# Printed by the demo's tools (TensorFlow 2.21, the CUDA wheel) on the 2-core VM without a GPU.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796665903.188256    4106 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "I0000 00:00:1796665903.188683    4106 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n",
    "E0000 00:00:1796665826.619962   10328 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "I0000 00:00:1796665815.113101   10328 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.\n",
    "E0000 00:00:1733329131.254361   12345 cuda_dnn.cc:8310] Unable to register cuDNN factory: "
    "Attempting to register factory for plugin cuDNN when one has already been registered\n",
    # TensorFlow's Python logging at info level (export, TFLite conversion).
    "I1207 18:23:05.972405 140234717805440 builder_impl.py:838] Assets written to: /tmp/x/assets\n",
    "INFO:tensorflow:Assets written to: /tmp/tmpie4mlpuw/assets\n",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: "
    "FLOAT32\n",
]
FRAMEWORK_WARNING = (
    "/work/.venv/lib/python3.11/site-packages/tensorflow/lite/python/convert.py:846: "
    "UserWarning: Statistics for quantized inputs were expected, but not specified\n"
    "  warnings.warn(\n")
OWN_WARNING = "/tmp/demo/tools/train.py:12: UserWarning: check this\n  warnings.warn(\n"
KEPT = [
    # The tools' own warnings (absl's Python logging), errors and tracebacks.
    "W1207 17:52:47.134930 140711570070400 tfrecords.py:503] skipped red/x.avi: not a readable "
    "video container\n",
    "predict: error: --video 'x.avi': No such file or directory\n",
    "Traceback (most recent call last):\n",
    # A C++ error that is not CUDA probing.
    "E0000 00:00:1796665826.619962   10328 bfc_allocator.cc:1] Allocator ran out of memory\n",
    "wrote demo_out/flow.png\n",
]


def test_is_noise_drops_the_start_up_lines_only():
  assert [line for line in NOISE if not quiet_stderr.is_noise(line)] == []
  assert [line for line in KEPT if quiet_stderr.is_noise(line)] == []


def _filtered(data: bytes, chunk: int) -> bytes:
  source, out = io.BytesIO(data), io.BytesIO()
  quiet_stderr.filter_stream(lambda: source.read(chunk), out.write)
  return out.getvalue()


def test_filter_stream_keeps_progress_bars_and_split_lines():
  bar = "make_synthetic:  50%|#####     | 1/2\rmake_synthetic: 100%|##########| 2/2\n"
  text = (NOISE[0] + KEPT[0] + NOISE[1] + bar + FRAMEWORK_WARNING + NOISE[2] + OWN_WARNING +
          KEPT[1] + "no newline at the end")
  expected = (KEPT[0] + bar + OWN_WARNING + KEPT[1] + "no newline at the end").encode()
  for chunk in (1, 7, 1 << 16):  # lines split across reads
    assert _filtered(text.encode(), chunk) == expected


def test_script_filters_stdin_to_stdout():
  out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "quiet_stderr.py")],
                       input="".join(NOISE + KEPT).encode(), capture_output=True, timeout=60)
  assert out.returncode == 0
  assert out.stdout.decode() == "".join(KEPT)
