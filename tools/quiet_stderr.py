"""Copies stdin to stdout without TensorFlow's log lines: the demo's stderr filter.

  some_tool 2>&1 >&3 | python tools/quiet_stderr.py >&2

`make demo` (tools/demo.sh) pipes each tool's stderr through it unless VERBOSE=1.
What it drops (`is_noise`), and nothing else:
- TensorFlow's C++ log lines, `I0000 00:00:17966.. 4106 port.cc:153] ...`, at
  info and warning level: the oneDNN notice (printed whatever TF_CPP_MIN_LOG_LEVEL
  says, before TF reads it; TF_ENABLE_ONEDNN_OPTS is left alone, since it changes
  the numerics), CUDA probing on a machine without a GPU, CPU feature notices;
  and at error level those of CUDA probing only (`cuInit`, `Unable to register`,
  `cuda_dlopen`, `cuda_diagnostics`): any other error line is kept;
- absl's `WARNING: All log messages before absl::InitializeLog() is called ...`
  and the second line of TF's CPU-instructions notice;
- info-level Python log lines (`I1207 18:17:02.75 1400 builder_impl.py:838] ...`,
  `INFO:tensorflow:...`): TensorFlow's SavedModel and TFLite converter notes (the
  project's own code logs warnings only, which are kept);
- LiteRT's `INFO: Created TensorFlow Lite XNNPACK delegate for CPU.` and its
  calibrator's `fully_quantize: 0, inference_type: 6, ...`;
- a Python warning raised inside TensorFlow, Keras or LiteRT (`.../tensorflow/lite/
  python/convert.py:846: UserWarning: ...`) with the source line printed under it.
The tools' own output, warnings and errors, Python tracebacks and progress bars
(lines ended by a carriage return, passed through as they come) are kept.
Standard library only: it runs before, and without, TensorFlow.
"""

import os
import re
import sys

# absl's C++ log prefix after the severity letter: MMDD, time, thread id, file.cc:line].
_CC = r"\d{4} [\d:.]+ +\d+ [\w./-]+\.(?:cc|h|cpp):\d+\] "
# A Python warning raised in a framework module; Python prints its source line under it.
_FRAMEWORK_WARNING = re.compile(
    r"\S*[/\\](?:tensorflow|keras|ai_edge_litert|absl)[/\\]\S+\.py:\d+: \w*Warning: ")
_NOISE = re.compile(
    rf"(?:[IW]{_CC}"
    rf"|E{_CC}.*(?:cuInit|Unable to register|cuda_dlopen|cuda_diagnostics)"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow with"
    r"|I\d{4} [\d:.]+ +\d+ [\w.-]+\.py:\d+\] "
    r"|INFO:tensorflow:"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate"
    r"|fully_quantize: \d+, inference_type: "
    rf"|{_FRAMEWORK_WARNING.pattern})")


def is_noise(line: str) -> bool:
  """True for a framework log line the demo hides (see the module docstring)."""
  return _NOISE.match(line.lstrip("\r")) is not None


def filter_stream(read_chunk, write) -> None:
  """Copies `read_chunk()` (bytes; b"" at the end) to `write`, dropping `is_noise` lines.

  Output goes out a segment at a time, a segment ending at a newline or a
  carriage return, so progress bars keep moving.
  """
  pending = b""
  after_warning = False  # the previous line was a dropped framework warning
  while True:
    chunk = read_chunk()
    if not chunk:
      break
    pending += chunk
    start = 0
    for match in re.finditer(rb"[\r\n]", pending):
      segment = pending[start:match.end()]
      start = match.end()
      line = segment.decode("utf-8", "replace")
      whole = segment.endswith(b"\n")
      if whole and after_warning and line.startswith("  "):
        after_warning = False  # the warning's source line
        continue
      after_warning = whole and _FRAMEWORK_WARNING.match(line) is not None
      if not (whole and is_noise(line)):
        write(segment)
    pending = pending[start:]
  if pending:
    write(pending)


def main() -> int:
  out = sys.stdout.buffer

  def write(data):
    out.write(data)
    out.flush()

  filter_stream(lambda: os.read(sys.stdin.fileno(), 65536), write)
  return 0


if __name__ == "__main__":
  sys.exit(main())
