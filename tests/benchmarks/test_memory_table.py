"""benchmarks/memory_table.py: the computed memory table, and the default HMDB51 config fits 24 GB."""

import importlib.util
import os

from absl import flags
import pytest

from tsnet_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def memory_table():
  before = set(flags.FLAGS)
  spec = importlib.util.spec_from_file_location(
      "_memory_table", os.path.join(REPO, "benchmarks", "memory_table.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  yield module
  for name in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, name)


def test_fit_reproduces_the_measurements(memory_table):
  for (stage, precision), points in memory_table.MEASURED.items():
    for batch, gib in points.items():
      assert memory_table.gib(stage, precision, batch) == pytest.approx(gib, abs=0.15)
  # Float32 keeps about twice the activations of mixed precision.
  for stage in memory_table.STAGES:
    ratio = memory_table.model(stage, "float32")[1] / memory_table.model(stage, "mixed")[1]
    assert 1.7 < ratio < 2.1
  table = memory_table.format_table([8, 32])
  assert "| student | mixed | 32 | 18.9 | measured 18.9 | yes | yes | yes |" in table
  assert "| rgb | float32 | 32 | 36.4 | computed | no | yes | yes |" in table


def test_default_hmdb51_config_fits_a_24_gb_gpu_at_its_effective_batch(memory_table):
  for name in ("hmdb51.yaml", "hmdb51_paper.yaml"):
    for stage in memory_table.STAGES:
      cfg = config_lib.load_config(os.path.join(REPO, "configs", name), stage)
      assert (cfg.data.num_frames, cfg.data.crop_size, cfg.model.backbone) == (25, 224, "r3d18")
      assert cfg.data.batch_size == 32  # the effective batch
      micro = cfg.data.batch_size // config_lib.accumulation_steps(cfg.train, cfg.data.batch_size)
      for precision in memory_table.PRECISIONS:  # whatever mixed precision resolves to
        assert memory_table.fits(memory_table.gib(stage, precision, micro), 24), (
            name, stage, precision, micro)
      # ... which the whole batch in float32 would not.
      assert not memory_table.fits(memory_table.gib(stage, "float32", cfg.data.batch_size), 24)
