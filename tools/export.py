"""Exports a trained classifier as a TF-Serving SavedModel version directory.

  python tools/export.py --model_dir=runs/student --export_dir=saved_models/student/1

Writes saved_model.pb, variables/, assets/labels.txt and model.keras (see
docs/deploy.md); refuses to replace an existing version unless --overwrite.
"""

import os

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Training output directory (model.keras, labels.txt).")
flags.DEFINE_string("export_dir", None,
                    "Version directory to write, saved_models/<name>/<version> "
                    "(the last component must be a number, as TF-Serving requires).")
flags.DEFINE_enum("checkpoint", "model.keras", ["model.keras", "best.keras"],
                  "Which classifier of --model_dir to export.")
flags.DEFINE_bool("overwrite", False, "Replace an existing --export_dir.")
flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv):
  del argv
  from tsnet_tf.export import saved_model as sm  # pylint: disable=g-import-not-at-top
  version = os.path.basename(os.path.normpath(FLAGS.export_dir))
  if not version.isdigit():
    raise app.UsageError(f"--export_dir {FLAGS.export_dir!r} must end in a numeric version "
                         "directory, e.g. saved_models/student/1")
  try:
    sm.export_from_model_dir(FLAGS.model_dir, FLAGS.export_dir, FLAGS.checkpoint,
                             overwrite=FLAGS.overwrite)
  except (FileExistsError, FileNotFoundError, ValueError) as e:
    raise app.UsageError(str(e)) from e
  print(f"exported {os.path.join(FLAGS.model_dir, FLAGS.checkpoint)} -> {FLAGS.export_dir}")
  print(f"inspect: saved_model_cli show --dir {FLAGS.export_dir} --all")


if __name__ == "__main__":
  from tsnet_tf.utils import cli  # pylint: disable=g-import-not-at-top
  cli.run(main)
