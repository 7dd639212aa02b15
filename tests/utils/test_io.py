import errno
import json
import os

import pytest

from tsnet_tf.utils import cli
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


@pytest.fixture
def umask_022():
  old = os.umask(0o022)
  yield
  os.umask(old)


def test_current_umask_is_read_without_changing_it(umask_022):
  assert io.current_umask() == 0o022
  assert os.umask(0o022) == 0o022
  assert io.umask_dir_mode() == 0o755 and io.umask_file_mode() == 0o644


def test_atomic_dir_has_the_mode_makedirs_gives(tmp_path, umask_022):
  # mkdtemp alone makes 0700: other users could not read a dataset or an export.
  target = tmp_path / "set"
  with io.atomic_dir(str(target)) as tmp:
    os.mkdir(os.path.join(tmp, "videos"))
  assert target.stat().st_mode & 0o777 == 0o755
  assert (target / "videos").stat().st_mode & 0o777 == 0o755
  assert io.make_temp_dir(str(tmp_path), "x") and all(
      (tmp_path / p).stat().st_mode & 0o777 == 0o755 for p in os.listdir(tmp_path))


def test_atomic_write_refuses_a_directory_and_keeps_it(tmp_path):
  (tmp_path / "fig.png").mkdir()
  with pytest.raises(IsADirectoryError) as info:
    with io.atomic_write(str(tmp_path / "fig.png")):
      pytest.fail("must not start")
  assert info.value.filename == str(tmp_path / "fig.png")
  assert os.listdir(tmp_path) == ["fig.png"]


def test_atomic_write_errors_name_the_final_path(tmp_path, monkeypatch):
  target = str(tmp_path / "a.png")
  # The temporary file cannot be made (a read-only directory, as root cannot test).
  def refuse(prefix, suffix, dir):  # pylint: disable=redefined-builtin
    raise PermissionError(errno.EACCES, "Permission denied",
                          os.path.join(dir, prefix + "abc" + suffix))
  with monkeypatch.context() as m:
    m.setattr(io.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as info:
      with io.atomic_write(target):
        pass
  assert cli.describe(info.value) == (f"{target}: Permission denied", cli.FAILURE_EXIT)
  # Writing the temporary file fails (a full disk).
  with pytest.raises(OSError) as info:
    with io.atomic_write(target) as tmp:
      raise OSError(errno.ENOSPC, "No space left on device", tmp)
  assert cli.describe(info.value)[0] == f"{target}: No space left on device"
  # An input's error keeps its own name.
  with pytest.raises(FileNotFoundError) as info:
    with io.atomic_write(target):
      open(str(tmp_path / "missing.avi"), "rb")
  assert info.value.filename == str(tmp_path / "missing.avi")
  assert os.listdir(tmp_path) == []


def test_atomic_dir_errors_name_the_final_path(tmp_path):
  target = str(tmp_path / "set")
  with pytest.raises(PermissionError) as info:
    with io.atomic_dir(target) as tmp:
      raise PermissionError(errno.EACCES, "Permission denied",
                            os.path.join(tmp, "videos", "a.avi"))
  assert cli.describe(info.value)[0] == (
      f"{os.path.join(target, 'videos', 'a.avi')}: Permission denied")
  assert os.listdir(tmp_path) == []


def test_atomic_dir_overwrite_keeps_the_old_one_until_the_new_is_in_place(tmp_path, monkeypatch):
  target = tmp_path / "set"
  target.mkdir()
  (target / "old").write_text("old")
  real_replace = os.replace
  def fail(src, dst):
    raise OSError(errno.EIO, "Input/output error", src)
  with monkeypatch.context() as m:
    m.setattr(io.os, "replace", fail)
    with pytest.raises(OSError) as info:
      with io.atomic_dir(str(target), overwrite=True) as tmp:
        open(os.path.join(tmp, "new"), "w").write("new")
  assert info.value.filename == str(target)
  assert (target / "old").read_text() == "old"
  assert os.listdir(tmp_path) == ["set"]
  assert os.replace is real_replace
  with io.atomic_dir(str(target), overwrite=True) as tmp:
    open(os.path.join(tmp, "new"), "w").write("new")
  assert os.listdir(target) == ["new"] and os.listdir(tmp_path) == ["set"]


def test_check_new_file(tmp_path):
  path = tmp_path / "m.tflite"
  io.check_new_file(str(path), flag="--output")
  path.write_text("precious")
  with pytest.raises(FileExistsError, match=r"--output '.*m\.tflite' already exists; pass "
                     "--overwrite"):
    io.check_new_file(str(path), flag="--output")
  io.check_new_file(str(path), overwrite=True)
  with pytest.raises(IsADirectoryError, match="is a directory"):
    io.check_new_file(str(tmp_path), overwrite=True, flag="--output")


def _owned(manifest):
  return manifest["files"]


def test_check_replaceable_deletes_only_what_the_manifest_lists(tmp_path):
  root = tmp_path / "set"
  root.mkdir()
  io.check_replaceable(str(root), "gen", "tool", _owned)  # empty: nothing to lose
  (root / "thesis.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="is not a dataset written by tool"):
    io.check_replaceable(str(root), "gen", "tool", _owned)
  (root / "thesis.txt").unlink()
  (root / "a").mkdir()
  (root / "a" / "v.avi").write_text("v")
  (root / io.MANIFEST).write_text(json.dumps({"generator": "other", "files": ["a/v.avi"]}))
  with pytest.raises(FileExistsError, match="not a dataset written by tool"):
    io.check_replaceable(str(root), "gen", "tool", _owned)
  (root / io.MANIFEST).write_text(json.dumps({"generator": "gen", "files": ["a/v.avi"]}))
  io.check_replaceable(str(root), "gen", "tool", _owned)
  (root / "a" / "notes.txt").write_text("mine")
  with pytest.raises(FileExistsError, match="holds 'a/notes.txt', which tool did not write"):
    io.check_replaceable(str(root), "gen", "tool", _owned)
  with pytest.raises(FileExistsError, match="is a file"):
    io.check_replaceable(str(root / "a" / "v.avi"), "gen", "tool", _owned)


@pytest.mark.parametrize("output, source, needle", [
    ("src", "src", "--output_dir 'src' is --video_dir"),
    ("src/out", "src", "is inside --video_dir"),
    ("loc", "loc/src", "--video_dir 'loc/src' is inside --output_dir"),
])
def test_check_apart(tmp_path, monkeypatch, output, source, needle):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match=needle):
    io.check_apart(output, "--output_dir", source, "--video_dir")
  io.check_apart("src2", "--output_dir", "src", "--video_dir")  # a shared prefix only
