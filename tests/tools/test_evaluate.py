"""tools/evaluate.py as a command on a tiny data directory and an untrained tiny teacher."""

import json
import re


def test_helpfull(run_tool_in_process):
  # In-process (cli.run, as its __main__): a subprocess would pay TF's import for --help.
  result = run_tool_in_process("evaluate.py", "--helpfull")
  assert result.code == 0
  for flag in ("--model_dir", "--data_dir", "--split", "--num_clips", "--fuse_with"):
    assert flag in result.out, flag
  # The tool spells out tsnet_tf.config.FUSION_MODES (no Keras at --help).
  from tsnet_tf import config  # pylint: disable=g-import-not-at-top
  assert f"--fusion: <{'|'.join(config.FUSION_MODES)}>" in result.out


def test_writes_eval_json_with_fractions(tmp_path, tiny_data_dir, run_tool):
  from tsnet_tf import models
  model_dir = tmp_path / "model"
  # A teacher: loading it in a fresh process needs TVL1Flow registered.
  model = models.build_teacher(2, 4, 16, backbone="light", width=4,
                               flow_overrides=dict(num_scales=1, finest_scale=0, num_warps=1,
                                                   num_iters=2, median_size=0))
  model_dir.mkdir()
  model.save(str(model_dir / "model.keras"))
  proc = run_tool("evaluate.py", f"--model_dir={model_dir}", f"--data_dir={tiny_data_dir}",
                  "--num_clips=3", "--batch_size=4")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "video accuracy" in proc.stdout
  with open(model_dir / "eval.json") as f:
    result = json.load(f)
  for key in ("clip_accuracy", "video_accuracy"):
    assert 0.0 <= result[key] <= 1.0
  assert result["num_clips"] == 3 * result["num_videos"] == 6
  assert (model_dir / "confusion_matrix.png").stat().st_size > 0


def test_truncated_shard_is_one_line_naming_it(tmp_path, tiny_data_dir, run_tool_in_process):
  import shutil  # pylint: disable=g-import-not-at-top
  from tsnet_tf import models  # pylint: disable=g-import-not-at-top
  from tsnet_tf.data import schema  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path / "data")
  shutil.copytree(tiny_data_dir, data_dir)
  for shard in schema.list_shards(data_dir):  # every shard: whichever holds the test videos
    with open(shard, "r+b") as f:
      f.truncate(f.seek(0, 2) * 6 // 10)
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  models.build_rgb_model(2, 4, 16, backbone="light", width=4).save(
      str(model_dir / "model.keras"))
  result = run_tool_in_process("evaluate.py", f"--model_dir={model_dir}",
                               f"--data_dir={data_dir}", "--num_clips=1", "--batch_size=2")
  # Split on \r too: tqdm's bar rewrites its line with it.
  lines = [l for l in re.split(r"[\r\n]", result.err) if l.startswith("evaluate: error")]
  assert result.code == 1 and "Traceback" not in result.err, result.err[-3000:]
  assert len(lines) == 1 and result.err.rstrip().endswith(lines[0])
  assert lines[0].startswith(
      f"evaluate: error: --data_dir {data_dir!r}: truncated or corrupt shard: hmdb51-0"), lines
