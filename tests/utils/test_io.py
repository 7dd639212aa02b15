import os

import pytest

from tsnet_tf.utils import io


def test_atomic_write_renames_on_success(tmp_path):
  target = tmp_path / "out.json"
  with io.atomic_write(str(target)) as tmp:
    assert tmp.endswith(".json")
    with open(tmp, "w") as f:
      f.write("{}")
    assert not target.exists()
  assert target.read_text() == "{}"
  assert os.listdir(tmp_path) == ["out.json"]
  umask = os.umask(0)
  os.umask(umask)
  assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
  target = tmp_path / "out.json"
  with pytest.raises(RuntimeError):
    with io.atomic_write(str(target)) as tmp:
      open(tmp, "w").write("half")
      raise RuntimeError("boom")
  assert os.listdir(tmp_path) == []


def test_atomic_dir_refuses_existing_and_cleans_up(tmp_path):
  target = tmp_path / "export" / "1"
  with io.atomic_dir(str(target)) as tmp:
    open(os.path.join(tmp, "a"), "w").write("x")
  assert (target / "a").read_text() == "x"
  with pytest.raises(FileExistsError):
    with io.atomic_dir(str(target)):
      pass
  with pytest.raises(RuntimeError):
    with io.atomic_dir(str(target), overwrite=True) as tmp:
      raise RuntimeError("boom")
  assert (target / "a").read_text() == "x"
  assert sorted(os.listdir(tmp_path / "export")) == ["1"]
