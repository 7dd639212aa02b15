"""Tests of tsnet_tf/data/remote.py: URIs through fsspec (no network: memory:// and file://)."""

import os
import sys
import uuid

import fsspec
import pytest

from tsnet_tf.data import remote

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def bucket():
  """A fresh in-memory 'bucket' (fsspec's memory:// filesystem, this process only)."""
  root = f"memory://bucket-{uuid.uuid4().hex}"
  fs = fsspec.filesystem("memory")
  yield root, fs
  fs.rm(root.split("://", 1)[1], recursive=True)


def test_is_uri():
  assert remote.is_uri("s3://b/x") and remote.is_uri("file:///tmp/x") and remote.is_uri("gs://b")
  assert not remote.is_uri("/tmp/x") and not remote.is_uri("videos") and not remote.is_uri("a:b")
  assert not remote.is_uri("")


def test_find_videos_is_find_video_files_selection_and_naming(bucket):
  root, fs = bucket
  for rel in ("b/v2.MP4", "a/v1.avi", "a/notes.txt", ".hidden/v3.avi", "a/.v4.avi", "top.mkv"):
    fs.pipe_file(f"{root}/videos/{rel}", b"x")
  assert remote.find_videos(f"{root}/videos") == [
      (f"{root}/videos/a/v1.avi", "a/v1"), (f"{root}/videos/b/v2.MP4", "b/v2"),
      (f"{root}/videos/top.mkv", "top")]
  with pytest.raises(ValueError, match=r"^--video_dir: 'memory://.*/nothing' is not a directory$"):
    remote.find_videos(f"{root}/nothing")


def test_local_copy_stages_the_bytes_and_cleans_up(bucket):
  root, fs = bucket
  fs.pipe_file(f"{root}/v.avi", b"video bytes")
  with remote.local_copy(f"{root}/v.avi") as path:
    assert os.path.isfile(path) and open(path, "rb").read() == b"video bytes"
  assert not os.path.exists(path)
  with remote.local_copy("/some/local/path.avi") as path:  # a local path is itself
    assert path == "/some/local/path.avi"
  with pytest.raises(FileNotFoundError, match=r"memory://.*/missing\.avi' does not exist"):
    with remote.local_copy(f"{root}/missing.avi"):
      pass


def test_upload_marks_complete_only_after_the_files(bucket, tmp_path):
  root, fs = bucket
  out = f"{root}/rawframes"
  folder = tmp_path / "v"
  (folder / "sub").mkdir(parents=True)
  (folder / "img_00001.jpg").write_bytes(b"1")
  (folder / "sub" / "f.flo").write_bytes(b"2")
  assert remote.complete_names(out) == []
  remote.upload_folder(str(folder), out, "cls/v")
  assert fs.cat_file(f"{out}/cls/v/img_00001.jpg") == b"1"
  assert fs.cat_file(f"{out}/cls/v/sub/f.flo") == b"2"
  assert remote.complete_names(out) == ["cls/v"]
  # A folder uploaded without its marker (a killed upload) is not complete.
  fs.pipe_file(f"{out}/cls/w/img_00001.jpg", b"half")
  assert remote.complete_names(out) == ["cls/v"]


def test_unsupported_schemes_are_one_line_naming_the_flag():
  with pytest.raises(ValueError) as e:
    remote.filesystem("nosuchscheme://b/x", "video_dir")
  assert str(e.value) == ("--video_dir 'nosuchscheme://b/x': unsupported URI scheme "
                          "'nosuchscheme' (fsspec knows file, memory, s3 with s3fs, gs with "
                          "gcsfs, hdfs, ...)")
  try:
    import s3fs  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    with pytest.raises(ValueError) as e:
      remote.filesystem("s3://bucket/x", "output_dir")
    assert "\n" not in str(e.value)
    assert str(e.value).startswith("--output_dir 's3://bucket/x': the s3:// scheme needs a "
                                   "package that is not installed")


def _run_tool(capsys, *args):
  sys.path.insert(0, os.path.join(_ROOT, "tests", "reliability"))
  try:
    import conftest as runner  # pylint: disable=g-import-not-at-top
  finally:
    sys.path.pop(0)
  return runner.run_tool(capsys, *args)


def test_tools_refuse_uris_where_unsupported_in_one_line(capsys, tmp_path):
  result = _run_tool(capsys, "extract_flow.py", "--video_dir=file:///tmp/v",
                     f"--output_dir={tmp_path / 'o'}")
  assert result.code == 2
  assert result.lines == ["extract_flow: error: --video_dir 'file:///tmp/v' is a URI: URIs "
                          "need --engine=ray (docs/scale.md)"]
  result = _run_tool(capsys, "extract_flow.py", "--video_dir=nosuch://b/v",
                     f"--output_dir={tmp_path / 'o'}", "--engine=ray")
  assert result.code == 2 and len(result.lines) == 1
  assert "unsupported URI scheme 'nosuch'" in result.lines[0]
  result = _run_tool(capsys, "prepare_hmdb51.py", "--video_dir=s3://b/videos",
                     "--split_dir=/tmp/s", f"--output_dir={tmp_path / 'o'}")
  assert result.code == 2 and len(result.lines) == 1
  assert "--video_dir 's3://b/videos': the converter reads and writes local" in result.lines[0]
  assert not (tmp_path / "o").exists()
