"""A tiny converted data directory shared by the training and tool tests.

Built once per pytest session (2 motion classes, 4 videos each: 2 train, 1 validation,
1 test; 32x32, under a second long) with the real generator and converter; loaded by
path from tests/tools too (pytest runs with --import-mode=importlib).
"""

import os

# Overrides that make every stage train in seconds on 2 CPU cores.
TINY_OVERRIDE = (
    "data.num_frames=4,data.crop_size=16,data.batch_size=2,data.eval_batch_size=4,"
    "train.epochs=1,train.steps_per_epoch=2,train.warmup_epochs=0,train.run_eagerly=true,"
    "model.backbone=light,model.width=4,"
    "model.flow.overrides={num_scales: 1, finest_scale: 0, num_warps: 1, num_iters: 2, median_size: 0}")


def make_tiny_data_dir(root: str) -> str:
  """Creates (once) `root/data`, a converted split-1 data directory."""
  data_dir = os.path.join(root, "data")
  if os.path.isfile(os.path.join(data_dir, "summary.json")):
    return data_dir
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  videos = os.path.join(root, "videos")
  synthetic.generate_dataset(videos, num_classes=2, videos_per_class=4, seed=0, height=32,
                             width=32, min_seconds=0.4, max_seconds=0.5)
  tfrecords.convert(os.path.join(videos, "videos"), os.path.join(videos, "splits"), data_dir,
                    splits=[1], settings=tfrecords.ConversionSettings(short_side=0),
                    num_workers=0, progress=False)
  return data_dir


# Stored flow matching configs/synthetic.yaml's teacher (fast, bound 4, frame stride 3).
TINY_FLOW_SETTINGS = dict(flow_preset="fast", flow_stride=3, flow_bound=4.0)


def make_tiny_flow_data_dir(root: str) -> str:
  """Creates (once) `root/data_flow`: `make_tiny_data_dir`'s videos with stored flow."""
  data_dir = os.path.join(root, "data_flow")
  if os.path.isfile(os.path.join(data_dir, "summary.json")):
    return data_dir
  from tsnet_tf.data import tfrecords  # pylint: disable=g-import-not-at-top
  make_tiny_data_dir(root)
  videos = os.path.join(root, "videos")
  tfrecords.convert(os.path.join(videos, "videos"), os.path.join(videos, "splits"), data_dir,
                    splits=[1], settings=tfrecords.ConversionSettings(short_side=0,
                                                                      **TINY_FLOW_SETTINGS),
                    num_workers=0, progress=False)
  return data_dir
