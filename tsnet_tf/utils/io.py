"""Atomic file and directory writes: a failed run never leaves a file that looks whole."""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_write(path: str):
  """Yields a temporary path next to `path`; renames it to `path` on success.

  On an exception the temporary file is removed and `path` is left untouched.
  The temporary name keeps the extension so writers that check it (e.g.
  `model.save("x.keras")`) accept it.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  base, ext = os.path.splitext(os.path.basename(path))
  fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", suffix=ext, dir=directory)
  os.close(fd)
  try:
    yield tmp
    # mkstemp creates 0600; give the file the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


@contextlib.contextmanager
def atomic_dir(path: str, overwrite: bool = False):
  """Yields a temporary directory next to `path`; renames it to `path` on success.

  Raises FileExistsError if `path` exists and `overwrite` is False.
  """
  path = os.fspath(path).rstrip("/")
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f"{path!r} already exists")
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
  try:
    yield tmp
    if os.path.exists(path):
      shutil.rmtree(path)
    os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
