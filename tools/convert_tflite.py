"""Converts an exported student to TFLite (float32, float16, int8), or the TV-L1 layer.

  python tools/convert_tflite.py --saved_model=saved_models/student/1 \
      --output=student_fp32.tflite --quantize=none
  python tools/convert_tflite.py --saved_model=saved_models/student/1 \
      --output=student_int8.tflite --quantize=int8 --data_dir=data/hmdb51_tfrecords
  python tools/convert_tflite.py --flow_only --flow_shape=8,112,112 --output=tvl1.tflite

Writes the .tflite file and its class names (<output stem>.labels.txt); an
existing one is replaced only with --overwrite.
"""

from absl import app
from absl import flags
from absl import logging

FLAGS = flags.FLAGS
flags.DEFINE_string("saved_model", None,
                    "Version directory written by tools/export.py, or a .keras file.")
flags.DEFINE_string("output", None, "The .tflite file to write.")
flags.DEFINE_enum("quantize", "none", ["none", "float16", "dynamic", "int8"],
                  "none: float32; float16: fp16 weights; dynamic: int8 weights, float "
                  "activations; int8: full-integer calibrated on --data_dir "
                  "(falls back to dynamic when an op cannot be quantised).")
flags.DEFINE_string("data_dir", None, "TFRecords (tools/prepare_hmdb51.py) for int8 calibration.")
flags.DEFINE_integer("split", 1, "Split whose training videos calibrate int8.")
flags.DEFINE_integer("num_calibration_clips", 64, "Clips in the int8 representative dataset.")
flags.DEFINE_bool("flow_only", False, "Convert tsnet_tf.layers.TVL1Flow alone (float32).")
flags.DEFINE_list("flow_shape", ["8", "112", "112"], "T,H,W of the flow model's input clip.")
flags.DEFINE_enum("flow_preset", "fast", ["fast", "accurate"], "TV-L1 preset (--flow_only).")
flags.DEFINE_bool("overwrite", False, "Replace an existing --output (and its .labels.txt).")
flags.mark_flags_as_required(["output"])


def main(argv):
  del argv
  from tsnet_tf.export import tflite as tfl  # pylint: disable=g-import-not-at-top
  from tsnet_tf.utils import io  # pylint: disable=g-import-not-at-top
  if not FLAGS.output.endswith(".tflite"):
    raise app.UsageError(f"--output {FLAGS.output!r} must end in .tflite")
  # Before any work: a file the user did not ask to replace is kept.
  outputs = [("--output", FLAGS.output)]
  if not FLAGS.flow_only:
    outputs.append(("--output's class names", tfl.labels_path_for(FLAGS.output)))
  for flag, path in outputs:
    try:
      io.check_new_file(path, FLAGS.overwrite, flag)
    except (FileExistsError, IsADirectoryError) as e:
      raise app.UsageError(str(e)) from e
  if FLAGS.flow_only:
    try:
      t, h, w = (int(v) for v in FLAGS.flow_shape)
    except ValueError as e:
      raise app.UsageError(f"--flow_shape {','.join(FLAGS.flow_shape)} must be three "
                           "integers T,H,W") from e
    if t < 2 or h < 1 or w < 1:
      raise app.UsageError(f"--flow_shape {t},{h},{w}: T must be >= 2 (flow is between two "
                           "frames) and H, W >= 1")
    flatbuffer = tfl.convert_flow_layer(t, h, w, preset=FLAGS.flow_preset)
    with io.atomic_write(FLAGS.output) as tmp:
      with open(tmp, "wb") as f:
        f.write(flatbuffer)
    print(f"wrote {FLAGS.output} ({len(flatbuffer)} bytes): clip [1,{t},{h},{w},3] -> "
          f"flow [1,{t - 1},{h},{w},2]")
    return
  if not FLAGS.saved_model:
    raise app.UsageError("--saved_model is required (unless --flow_only)")
  try:
    info = tfl.convert_saved_model(FLAGS.saved_model, FLAGS.output, FLAGS.quantize,
                                   data_dir=FLAGS.data_dir,
                                   num_calibration_clips=FLAGS.num_calibration_clips,
                                   split=FLAGS.split)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  if info["quantize"] != FLAGS.quantize:
    logging.warning("requested --quantize=%s, produced %s", FLAGS.quantize, info["quantize"])
  print(f"wrote {info['output']} ({info['bytes']} bytes, quantize={info['quantize']}) "
        f"and {info['labels']}")


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
