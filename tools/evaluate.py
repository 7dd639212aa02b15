"""Evaluates a trained model: clip- and video-level accuracy, per class, confusion matrix.

  python tools/evaluate.py --model_dir=runs/student --data_dir=data/synth \
      [--split=1] [--num_clips=10] [--checkpoint=best.keras]
  # Two-stream late fusion of separately trained networks at evaluation:
  python tools/evaluate.py --model_dir=runs/rgb --fuse_with=runs/teacher \
      --output_dir=runs/fused --data_dir=data/synth [--fusion=geometric]

Writes <output_dir or model_dir>/eval.json (top-level clip_accuracy and
video_accuracy, fractions in [0, 1], plus per-class accuracy and the
confusion matrix) and confusion_matrix.png. Video level = mean of the K clips'
softmax per video. With --fuse_with, --fusion picks the late-fusion rule
(tsnet_tf.layers.LateFusion): mean of the models' softmax (default, the
classic two-stream rule) or geometric (normalised product, which lets a model
sure that a class is wrong veto it); eval.json records it.
"""

from absl import app
from absl import flags

from tsnet_tf import config
from tsnet_tf.data import hmdb51
from tsnet_tf.utils import cli

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Training output directory.",
                                 required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Output of tools/prepare_hmdb51.py.",
                                required=True)
_SPLIT = flags.DEFINE_integer("split", 1, "Split (HMDB51: 1-3; a session layout has one per "
                              "session).", lower_bound=1)
_NUM_CLIPS = flags.DEFINE_integer(
    "num_clips", None, "Clips per video (K); default: eval.num_clips of the model's "
    "config.yaml, else 10.", lower_bound=1)
_SUBSET = flags.DEFINE_enum("subset", "test", list(hmdb51.SUBSETS), "Subset to evaluate.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Clips per batch.", lower_bound=1)
_CHECKPOINT = flags.DEFINE_enum("checkpoint", "model.keras", ["model.keras", "best.keras"],
                                "Final model or the best on validation.")
_FUSE_WITH = flags.DEFINE_list(
    "fuse_with", [], "More model dirs whose softmax is fused with --model_dir's per clip "
    "(late fusion, rule: --fusion).")
# tsnet_tf.config loads no Keras, so --help stays fast.
_FUSION = flags.DEFINE_enum(
    "fusion", "mean", list(config.FUSION_MODES),
    "Late-fusion rule, applies with --fuse_with: mean = average of the softmax (classic "
    "two-stream), geometric = normalised product of the softmax (a model sure a class is "
    "wrong vetoes it).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Where eval.json and the PNG go (default: --model_dir).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from tsnet_tf.data import pipeline  # pylint: disable=g-import-not-at-top
  from tsnet_tf.training import evaluation  # pylint: disable=g-import-not-at-top
  output_dir = _OUTPUT_DIR.value
  cli.check_dir_flag("output_dir", output_dir)
  # EvaluationError and missing files end as one line in cli.run; `reading`
  # names the shard when a truncated one stops tf.data midway.
  with pipeline.reading(_DATA_DIR.value):
    result = evaluation.evaluate(
        _MODEL_DIR.value, _DATA_DIR.value, split=_SPLIT.value, num_clips=_NUM_CLIPS.value,
        subset=_SUBSET.value, batch_size=_BATCH_SIZE.value, checkpoint=_CHECKPOINT.value,
        fuse_dirs=_FUSE_WITH.value, output_dir=output_dir, fusion=_FUSION.value)
  fused = f", {result['fusion']} fusion" if "fusion" in result else ""
  print(f"split {result['split']} {result['subset']}: {result['num_videos']} videos, "
        f"{result['clips_per_video']} clips each{fused}")
  print(f"clip accuracy  {result['clip_accuracy']:.4f}")
  print(f"video accuracy {result['video_accuracy']:.4f}")
  width = max(len(n) for n in result["per_class_accuracy"])
  for name, acc in result["per_class_accuracy"].items():
    print(f"  {name:<{width}}  {'n/a' if acc is None else f'{acc:.3f}'}")
  return 0


if __name__ == "__main__":
  cli.run(main)
