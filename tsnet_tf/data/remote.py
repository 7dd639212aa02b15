"""Inputs and outputs as filesystem URIs (s3://, gs://, file://, ...) through fsspec.

Used by the Ray engine's flow extraction (`distributed.extract`): videos are
listed under a `--video_dir` URI, each video is copied to a node-local
temporary file for the decoder (PyAV) and the finished output folder is
uploaded, so the extraction code itself only ever sees local paths. fsspec
(pinned in requirements.lock) resolves the URI; a scheme needs its driver
package (`s3fs` for s3://, `gcsfs` for gs://), and an unknown scheme or a
missing driver is one line naming the flag.

Object stores have no atomic rename, so a finished output folder is marked
by an empty object `<output>/.complete/<name>` written after its last file:
a rerun redoes the videos without one (a half-uploaded folder is rewritten
with the same file names). Local paths never come here.
"""

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
from typing import Iterator, List, Tuple

import fsspec

from tsnet_tf.data import video as video_lib

# Where the completion markers of a URI output go (one empty object per video).
COMPLETE_DIR = ".complete"
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")  # one letter: a Windows drive


def is_uri(path: str) -> bool:
  """True for `scheme://...` (a local path, even with a colon, is not one)."""
  return bool(path) and _URI.match(path) is not None


def filesystem(uri: str, flag: str) -> Tuple[fsspec.AbstractFileSystem, str]:
  """(fsspec filesystem, path inside it) of `uri`.

  Raises:
    ValueError: one line naming `--flag`: an unknown scheme, or one whose
      driver package is not installed.
  """
  scheme = _URI.match(uri).group(1).lower()
  try:
    fs, path = fsspec.core.url_to_fs(uri)
  except ImportError as e:  # fsspec knows the scheme; its driver is missing
    raise ValueError(f"--{flag} {uri!r}: the {scheme}:// scheme needs a package that is "
                     f"not installed ({str(e).splitlines()[0]})") from e
  except ValueError as e:
    raise ValueError(f"--{flag} {uri!r}: unsupported URI scheme {scheme!r} (fsspec knows "
                     "file, memory, s3 with s3fs, gs with gcsfs, hdfs, ...)") from e
  return fs, path


def join(uri: str, *parts: str) -> str:
  """`uri` joined with '/'-separated relative parts."""
  return "/".join([uri.rstrip("/")] + [p.strip("/") for p in parts])


def find_videos(uri: str, flag: str = "video_dir") -> List[Tuple[str, str]]:
  """(URI, name) of every video under the folder `uri`, sorted by name.

  The same selection as `video.find_video_files` (an extension in
  `VIDEO_EXTENSIONS`, hidden names skipped); the name is the relative path
  without its extension, as `flow_extraction.find_videos` names local videos.

  Raises:
    ValueError: a bad scheme, or `uri` is not a folder (one line naming `--flag`).
  """
  fs, root = filesystem(uri, flag)
  if not fs.isdir(root):
    raise ValueError(f"--{flag}: {uri!r} is not a directory")
  found = []
  for path in fs.find(root):
    rel = posixpath.relpath(path, root)
    *folders, name = rel.split("/")
    if video_lib.is_video_file_name(name) and not any(f.startswith(".") for f in folders):
      found.append((join(uri, rel), os.path.splitext(rel)[0]))
  return sorted(found, key=lambda item: item[1])


@contextlib.contextmanager
def local_copy(path: str) -> Iterator[str]:
  """A local path of `path`: itself when local, else a temporary copy removed after.

  Raises:
    OSError: the object cannot be read (a missing video: the caller's dead letter).
  """
  if not is_uri(path):
    yield path
    return
  try:
    fs, inner = filesystem(path, "video_dir")
  except ValueError as e:
    raise OSError(str(e)) from e
  folder = tempfile.mkdtemp(prefix="tsnet_tf_video_")
  try:
    local = os.path.join(folder, os.path.basename(inner) or "video")
    try:
      fs.get_file(inner, local)
    except FileNotFoundError as e:
      raise FileNotFoundError(f"{path!r} does not exist") from e
    yield local
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def complete_names(output_uri: str) -> List[str]:
  """Names of the videos whose output folder under `output_uri` is complete."""
  fs, root = filesystem(output_uri, "output_dir")
  marks = join(root, COMPLETE_DIR)
  if not fs.isdir(marks):
    return []
  return [posixpath.relpath(path, marks) for path in fs.find(marks)]


def upload_folder(local_dir: str, output_uri: str, name: str) -> None:
  """Copies the finished `local_dir` to `output_uri/name`, then marks it complete."""
  fs, root = filesystem(output_uri, "output_dir")
  target = join(root, name)
  for folder, _, files in os.walk(local_dir):
    for file_name in sorted(files):
      local = os.path.join(folder, file_name)
      rel = os.path.relpath(local, local_dir).replace(os.sep, "/")
      fs.makedirs(os.path.dirname(join(target, rel)), exist_ok=True)
      fs.put_file(local, join(target, rel))
  marker = join(root, COMPLETE_DIR, name)
  fs.makedirs(os.path.dirname(marker), exist_ok=True)
  fs.pipe_file(marker, b"")


def upload_file(local: str, output_uri: str, name: str) -> None:
  """Copies the file `local` to `output_uri/name` (e.g. a summary)."""
  fs, root = filesystem(output_uri, "output_dir")
  fs.makedirs(root, exist_ok=True)
  fs.put_file(local, join(root, name))
