"""Every stage of configs/hmdb51.yaml for 2 training steps at the paper's shapes, on CPU.

R3D-18 on 25x224x224 clips, `accurate` TV-L1 in the graph and stored, through
tools/prepare_hmdb51.py and tools/train.py exactly as docs/hmdb51.md runs them
(only --params_override shortens the run), on a tiny HMDB51-layout set of
generated 320x240 videos. Each tool runs in its own process; its wall time and
host peak memory (ru_maxrss) are printed (pytest -s) for docs/hmdb51.md.

Heavy (minutes on 2 cores, several GiB of host memory): slow-marked.
"""

import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "configs", "hmdb51.yaml")

# One optimizer step of 2 clips as 2 micro-batches of 1 (gradient accumulation),
# validation on one clip: the shapes, models and flow of the real config.
STEPS = ("train.epochs=1,train.steps_per_epoch=1,data.batch_size=2,train.micro_batch_size=1,"
         "data.eval_batch_size=1,train.validation_steps=1,train.warmup_epochs=0")

# Runs a tool as `python tools/<tool>` and reports its peak resident memory at exit.
_MEASURED = ("import atexit, resource, runpy, sys; "
             "atexit.register(lambda: print('@@maxrss_kib', "
             "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)); "
             "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def _run(tool, *args):
  cmd = [sys.executable, "-c", _MEASURED, os.path.join(REPO, "tools", tool), *args]
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
  start = time.time()
  proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600, check=False)
  wall = time.time() - start
  assert proc.returncode == 0, f"{tool} {args}:\n{proc.stderr[-4000:]}"
  kib = [int(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith("@@maxrss_kib")]
  gib = kib[-1] / 2**20 if kib else float("nan")
  print(f"\n@@ {tool} {args[1:3]}: {wall:.0f} s, host peak {gib:.1f} GiB", flush=True)
  return wall, gib


@pytest.mark.slow
def test_every_hmdb51_stage_trains_two_steps_at_the_paper_shapes(tmp_path):
  from tsnet_tf.data import synthetic  # pylint: disable=g-import-not-at-top
  videos = str(tmp_path / "videos")
  # 2 classes x 2 videos (1 train, 1 test each) of 26-28 frames at 320x240, 25 fps.
  synthetic.generate_dataset(videos, num_classes=2, videos_per_class=2, seed=0, height=240,
                             width=320, min_seconds=1.05, max_seconds=1.1, fps=(25.0,))
  data = str(tmp_path / "data")
  report = []
  report.append(("prepare_hmdb51 (stored accurate flow)", *_run(
      "prepare_hmdb51.py", f"--video_dir={videos}/videos", f"--split_dir={videos}/splits",
      f"--output_dir={data}", "--splits=1", "--num_workers=1", "--validation_fraction=0",
      "--flow_preset=accurate", "--flow_bound=20", "--flow_stride=1")))
  runs = str(tmp_path / "runs")

  def train(stage, name, extra="", *flags):
    override = STEPS + ("," + extra if extra else "")
    wall, gib = _run("train.py", f"--config={CONFIG}", f"--stage={stage}",
                     f"--model_dir={runs}/{name}", f"--data_dir={data}",
                     f"--params_override={override}", "--progress=0", *flags)
    assert os.path.isfile(os.path.join(runs, name, "model.keras"))
    report.append((f"train {name}", wall, gib))

  train("rgb", "rgb")
  # Accurate TV-L1 in every step; two optimizer steps (4 micro-batches) and two
  # validations: Grappler's AddOpsRewrite crashed this graph from its first steps on
  # (tsnet_tf/utils/tf_graph.py).
  train("teacher", "teacher", "train.epochs=2")
  train("teacher", "teacher_stored", "model.flow.source=stored")
  train("student", "student", "", f"--teacher_dir={runs}/teacher")
  train("student", "student_stored", "model.flow.source=stored",
        f"--teacher_dir={runs}/teacher")
  train("twostream", "twostream", "", f"--rgb_dir={runs}/rgb", f"--flow_dir={runs}/teacher")
  print("\n| step | wall (s) | host peak memory (GiB) |\n| --- | ---: | ---: |")
  for name, wall, gib in report:
    print(f"| {name} | {wall:.0f} | {gib:.1f} |")
