r"""Where do the models look? Class activation maps of several runs on the same real clips.

  python benchmarks/real_motion_cam.py --data_dir=D --split=2 --subset=validation \
      --runs=rgb:R1,student:R2,teacher:R3 --output=cam.png

For one clip (the centre clip) of the first --per_class videos of each class of
the subset, draws the middle frame and, per run, its class activation map for
the true class (tsnet_tf.models.cam): on motion-defined classes a model that
learnt the motion lights up what moves (the hand), one that learnt who and
where lights up the person, clothes or room.
"""

import collections

from absl import app
from absl import flags
import numpy as np

from tsnet_tf.data import pipeline
from tsnet_tf.models import cam
from tsnet_tf.training import plots
from tsnet_tf.training import run_dir
from tsnet_tf.utils import cli

_DATA_DIR = flags.DEFINE_string("data_dir", None, "prepare_hmdb51 output.", required=True)
_SPLIT = flags.DEFINE_integer("split", 1, "Split.", lower_bound=1)
_SUBSET = flags.DEFINE_enum("subset", "validation", ["train", "validation", "test"],
                            "Videos to draw.")
_RUNS = flags.DEFINE_list("runs", None, "name:model_dir pairs (trained runs).", required=True)
_PER_CLASS = flags.DEFINE_integer("per_class", 1, "Videos drawn per class.", lower_bound=1)
_OUTPUT = flags.DEFINE_string("output", "cam.png", "PNG to write.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  runs, specs = {}, set()
  for item in _RUNS.value:
    name, sep, path = item.partition(":")
    if not sep or not name or not path:
      raise app.UsageError(f"--runs wants name:model_dir pairs, got {item!r}")
    runs[name] = run_dir.load_classifier(path, run_dir.MODEL_FILE, "--runs")
    spec, _ = run_dir.clip_contract(path, runs[name])
    specs.add((spec.num_frames, spec.crop_size, spec.frame_stride))
  if len(specs) != 1:
    raise app.UsageError(f"--runs expect different clips {sorted(specs)}: compare runs of "
                         "one clip contract")
  (num_frames, crop, stride), = specs
  labels = pipeline.load_labels(_DATA_DIR.value)
  ds = pipeline.make_dataset(_DATA_DIR.value, _SPLIT.value, _SUBSET.value, training=False,
                             num_frames=num_frames, crop_size=crop, batch_size=1,
                             num_clips=1, frame_stride=stride,
                             return_video_index=True)
  picked = collections.defaultdict(list)
  for clip, label, video in ds.as_numpy_iterator():
    k = int(label[0])
    if len(picked[k]) < _PER_CLASS.value:
      picked[k].append((clip[0], int(video[0])))
  order = [(k, c, v) for k in sorted(picked) for c, v in picked[k]]
  clips = np.stack([c for _, c, _ in order])
  classes = [k for k, _, _ in order]
  maps = {}
  for name, model in runs.items():
    maps[name] = cam.class_activation_maps(model, clips, classes)
    predicted = np.argmax(model.predict(clips, verbose=0), axis=-1)
    right = int(np.sum(predicted == np.asarray(classes)))
    maps[f"{name} ({right}/{len(classes)} right)"] = maps.pop(name)
  titles = [f"{labels[k]} (video {v})" for k, _, v in order]
  plots.plot_activation_maps(clips, maps, titles, _OUTPUT.value,
                             title=f"class activation maps, split {_SPLIT.value} "
                             f"{_SUBSET.value}: true class")
  print(f"wrote {_OUTPUT.value}")
  return 0


if __name__ == "__main__":
  cli.run(main)
