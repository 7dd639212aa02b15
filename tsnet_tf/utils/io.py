"""Atomic file and directory writes: a failed run never leaves a file that looks whole.

Also the rules every tool follows before it replaces something: an existing
output is replaced only when asked (`check_new_file`), and `--overwrite`
deletes a directory only if it holds nothing but what the tool wrote
(`check_replaceable`).
"""

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from typing import Callable, Iterable, Optional

from tsnet_tf.utils import errors

MANIFEST = "manifest.json"


def current_umask() -> int:
  """The process's umask, read without changing it where the OS allows."""
  # os.umask can only be read by setting it; in between, a file another thread
  # creates would get mode 0666. Linux reports it in /proc instead.
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except (OSError, ValueError, IndexError):
    pass
  umask = os.umask(0)
  os.umask(umask)
  return umask


def umask_dir_mode() -> int:
  """The mode `os.makedirs` gives a new directory under the current umask."""
  return 0o777 & ~current_umask()


def umask_file_mode() -> int:
  """The mode a plain `open(path, "w")` gives a new file under the current umask."""
  return 0o666 & ~current_umask()


def make_temp_dir(parent: str, base: str) -> str:
  """`tempfile.mkdtemp` in `parent` (prefix `.<base>.tmp-`), with a new directory's mode.

  mkdtemp makes it 0700; renamed into place, other users (a model server, a
  colleague reading a dataset) could not read it.
  """
  tmp = tempfile.mkdtemp(prefix=f".{base}.tmp-", dir=parent)
  os.chmod(tmp, umask_dir_mode())
  return tmp


def _naming(e: OSError, path: str) -> OSError:
  """`e` (same class, errno and strerror) naming `path` instead of a temporary name."""
  if e.errno is None:
    return e
  try:
    return type(e)(e.errno, e.strerror, path)
  except TypeError:  # a subclass with its own constructor
    return OSError(e.errno, e.strerror, path)


def check_new_file(path: str, overwrite: bool = False, flag: Optional[str] = None) -> None:
  """Refuses to replace an existing `path` unless `overwrite`; never replaces a directory.

  Args:
    path: a file output.
    overwrite: whether an existing file may be replaced.
    flag: the tool's flag that named `path` (e.g. "--output"), for the message.

  Raises:
    IsADirectoryError: `path` is a directory (whatever `overwrite` says).
    FileExistsError: `path` exists and `overwrite` is False; the message names
      it and `--overwrite`.
  """
  named = f"{flag} {path!r}" if flag else repr(path)
  if os.path.isdir(path):
    raise IsADirectoryError(f"{named} is a directory, not a file")
  if os.path.lexists(path) and not overwrite:
    raise FileExistsError(f"{named} already exists; pass --overwrite to replace it")


def check_replaceable(path: str, generator: str, tool: str,
                      owned: Callable[[dict], Iterable[str]],
                      flag: str = "--output_dir") -> None:
  """Checks that directory `path` holds only what `tool` wrote, so --overwrite may delete it.

  What a tool wrote is told by its `MANIFEST`: a JSON object whose "generator"
  is `generator`, and `owned(manifest)` listing the files (relative paths) it
  wrote besides the manifest. An empty directory is fine (nothing is lost).

  Raises:
    FileExistsError: one line naming `path` and what is not the tool's.
  """
  if not os.path.isdir(path):
    raise FileExistsError(f"{flag} {path!r} is a file, not a directory; "
                          f"--overwrite replaces only a dataset {tool} wrote")
  if not os.listdir(path):
    return
  try:
    with open(os.path.join(path, MANIFEST), encoding="utf-8") as f:
      manifest = json.load(f)
    if manifest.get("generator") != generator:
      raise ValueError(manifest.get("generator"))
    ours = {os.path.normpath(p) for p in owned(manifest)}
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise FileExistsError(
        f"{flag} {path!r} is not a dataset written by {tool} (no valid "
        f"{MANIFEST}); refusing to delete it with --overwrite") from e
  ours.add(MANIFEST)
  for root, dirs, files in os.walk(path):
    # A symlink to a directory is listed in dirs; rmtree would refuse it anyway.
    for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
      rel = os.path.normpath(os.path.relpath(os.path.join(root, name), path))
      if rel not in ours:
        raise FileExistsError(
            f"{flag} {path!r} holds {rel!r}, which {tool} did not write; "
            "refusing to delete it with --overwrite")


def is_within(path: str, root: str) -> bool:
  """Whether `path` is `root` or below it, links resolved."""
  path, root = os.path.realpath(path), os.path.realpath(root)
  return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def check_apart(output: str, output_flag: str, source: str, source_flag: str) -> None:
  """Refuses an output directory that is, or is inside, or holds, an input directory.

  Raises:
    ValueError: one line naming both flags.
  """
  if is_within(output, source):
    where = "is" if os.path.realpath(output) == os.path.realpath(source) else "is inside"
    raise ValueError(f"{output_flag} {output!r} {where} {source_flag} {source!r}; "
                     "write the output somewhere else")
  if is_within(source, output):
    raise ValueError(f"{source_flag} {source!r} is inside {output_flag} {output!r}; "
                     "write the output somewhere else")


@contextlib.contextmanager
def atomic_write(path: str):
  """Yields a temporary path next to `path`; renames it to `path` on success.

  On an exception the temporary file is removed and `path` is left untouched.
  The temporary name keeps the extension so writers that check it (e.g.
  `model.save("x.keras")`) accept it. An OSError while making, writing or
  renaming the temporary file names `path`, not the temporary name the user
  never asked for.

  Raises:
    IsADirectoryError: `path` is a directory.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
  directory = os.path.dirname(os.path.abspath(path))
  base, ext = os.path.splitext(os.path.basename(path))
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", suffix=ext, dir=directory)
  except OSError as e:
    raise _naming(e, path) from e
  os.close(fd)
  try:
    try:
      yield tmp
    except OSError as e:
      # Only an error on the temporary file: another (an input) keeps its name.
      if tmp in (e.filename, e.filename2):
        raise _naming(e, path) from e
      raise
    try:
      # mkstemp creates 0600; give the file the mode a plain open() would.
      os.chmod(tmp, umask_file_mode())
      os.replace(tmp, path)
    except OSError as e:
      raise _naming(e, path) from e
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


@contextlib.contextmanager
def atomic_dir(path: str, overwrite: bool = False):
  """Yields a temporary directory next to `path`; renames it to `path` on success.

  The directory gets the mode `os.makedirs` would give it (`make_temp_dir`).
  With `overwrite`, an existing `path` is moved aside and deleted only once
  the new one is in place; callers check first that it is theirs to delete
  (`check_replaceable`). An OSError on the temporary directory names `path`.

  Raises:
    FileExistsError: `path` exists and `overwrite` is False.
  """
  path = os.fspath(path).rstrip("/")
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f"{path!r} already exists")
  parent = os.path.dirname(os.path.abspath(path))
  base = os.path.basename(path)
  try:
    os.makedirs(parent, exist_ok=True)
    tmp = make_temp_dir(parent, base)
  except OSError as e:
    raise _naming(e, path) from e
  try:
    try:
      yield tmp
    except OSError as e:
      # A file inside the temporary directory is named where it would have been.
      name = e.filename
      if isinstance(name, (str, os.PathLike)) and is_within(os.fspath(name), tmp):
        rel = os.path.relpath(os.path.realpath(name), os.path.realpath(tmp))
        raise _naming(e, os.path.normpath(os.path.join(path, rel))) from e
      raise
    holder = None
    try:
      if os.path.lexists(path):
        # Moved aside, not deleted, until the new one is in place: a failed
        # rename puts it back, and a crash leaves it in `.<base>.old-*`.
        holder = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
        os.rename(path, os.path.join(holder, base))
      try:
        os.replace(tmp, path)
      except OSError:
        if holder is not None:
          os.rename(os.path.join(holder, base), path)
          os.rmdir(holder)
          holder = None
        raise
    except OSError as e:
      raise _naming(e, path) from e
    if holder is not None:
      shutil.rmtree(holder, ignore_errors=True)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


class NotAKerasFileError(errors.InputError, ValueError):
  """A file given as a `.keras` model is not one."""


def check_keras_file(path: str) -> None:
  """Refuses a `path` that is not a `.keras` archive before Keras reads it.

  Keras reports any unreadable archive as "File not found", even when the file
  exists (e.g. a text file named model.keras).

  Raises:
    FileNotFoundError: `path` does not exist.
    NotAKerasFileError: it is not a zip archive (a ValueError).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Keras model file {path!r} does not exist")
  if not zipfile.is_zipfile(path):
    raise NotAKerasFileError(
        f"{path!r} is not a Keras model file (a .keras file is a zip archive)")
