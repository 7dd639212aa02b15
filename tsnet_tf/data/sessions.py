"""Leave-one-session-out splits, in HMDB51's layout, for any folder of class folders.

Real recordings of a few people (or sessions) are the test that matters for a
motion model: train on some people, test on one it never saw. This module lays
such a set out so that every tool runs on it unchanged:

  <video_dir>/<class>/<file>           the user's recordings (read, never changed)
  <sessions file>                      which session each file was recorded in

  ->  <output_dir>/videos/<class>/<session>_<class>_<stem><ext>
      <output_dir>/splits/<class>_test_split<k>.txt
      <output_dir>/manifest.json       (sessions, split k -> test session, counts)

Split k tests on the k-th session (sessions sorted by name) and trains on the
others. Each output name starts with its session, which is the name's group for
`hmdb51.video_group`: so `tools/prepare_hmdb51.py --validation_fraction`
holds out whole *sessions* of the training ones as validation, never new takes
of a training session (which would reward memorising who and where). With
`--validation_groups=shared` they are the same sessions in every class, as many
as fit in the fraction of the training videos (sessions differ in size).

The sessions file is a table (tab- or comma-separated) with a header row: the
first column is the video's path relative to `video_dir` (`<class>/<file>`),
and the session is the column named by `session_column` (default: the second).
Videos are linked (symlinks, default) or copied; the user's files are never
moved or modified.
"""

import csv
import dataclasses
import json
import os
import re
import shutil
from typing import Callable, Dict, List, Optional, Sequence

from tsnet_tf.data import hmdb51
from tsnet_tf.data import video as video_lib
from tsnet_tf.utils import errors
from tsnet_tf.utils import io as io_utils

_GENERATOR = "tsnet_tf.data.sessions"
LINK_MODES = ("symlink", "copy")


class SessionsError(errors.InputError, ValueError):
  """The sessions file or the video folder cannot be laid out as sessions."""


def session_id(label: str) -> str:
  """A session label as a file-name prefix: `S1_batch (Ann)` -> `S1-batch-Ann`.

  Underscores become dashes, so the prefix never contains `_<class>_` and
  `hmdb51.video_group` cuts the name exactly after it.
  """
  sid = re.sub(r"[^A-Za-z0-9.-]+", "-", label).strip("-.")
  if not sid:
    raise SessionsError(f"session label {label!r} has no letters or digits")
  return sid


def read_sessions(path: str, session_column: Optional[str] = None) -> Dict[str, str]:
  """Reads the sessions file: {`<class>/<file>`: session label}.

  Raises:
    SessionsError: one line naming the file (and line) when it is missing, has
      no header, lacks `session_column`, lists a video twice with two sessions,
      or leaves a listed video without a session.
  """
  try:
    with open(path, "r", encoding="utf-8", newline="") as f:
      text = f.read()
  except FileNotFoundError as e:
    raise SessionsError(f"--sessions {path!r} does not exist") from e
  except IsADirectoryError as e:
    raise SessionsError(f"--sessions {path!r} is a directory, not a table") from e
  except UnicodeDecodeError as e:
    raise SessionsError(f"--sessions {path!r} is not UTF-8 text") from e
  lines = [line for line in text.splitlines() if line.strip()]
  if len(lines) < 2:
    raise SessionsError(f"--sessions {path!r} needs a header row and at least one video")
  delimiter = "\t" if "\t" in lines[0] else ","
  rows = list(csv.reader(lines, delimiter=delimiter))
  header = [h.strip() for h in rows[0]]
  if len(header) < 2:
    raise SessionsError(f"--sessions {path!r}: the header needs a path column and a session "
                        f"column, got {lines[0]!r}")
  if session_column is None:
    column = 1
  elif session_column in header:
    column = header.index(session_column)
  else:
    raise SessionsError(f"--sessions {path!r} has no column {session_column!r} "
                        f"(columns: {', '.join(header)})")
  sessions = {}
  for lineno, row in enumerate(rows[1:], start=2):
    if len(row) <= column or not row[0].strip() or not row[column].strip():
      raise SessionsError(f"{path}:{lineno}: expected a path and a session, got "
                          f"{delimiter.join(row)!r}")
    rel = os.path.normpath(row[0].strip())
    label = row[column].strip()
    if sessions.get(rel, label) != label:
      raise SessionsError(f"{path}:{lineno}: {rel!r} is listed with two sessions, "
                          f"{sessions[rel]!r} and {label!r}")
    sessions[rel] = label
  return sessions


@dataclasses.dataclass(frozen=True)
class SessionLayout:
  """What `layout_sessions` wrote.

  Attributes:
    output_dir: the dataset root (`videos/`, `splits/`, `manifest.json`).
    classes: class names, sorted (label order).
    sessions: session ids, sorted; split k tests on `sessions[k - 1]`.
    counts: {session id: {class: number of videos}}.
    unlisted: videos under the class folders that the sessions file does not list
      (left out).
  """
  output_dir: str
  classes: Sequence[str]
  sessions: Sequence[str]
  counts: Dict[str, Dict[str, int]]
  unlisted: Sequence[str]

  @property
  def video_dir(self) -> str:
    return os.path.join(self.output_dir, "videos")

  @property
  def split_dir(self) -> str:
    return os.path.join(self.output_dir, "splits")


def _video_name(sid: str, cls: str, rel: str) -> str:
  stem, ext = os.path.splitext(os.path.basename(rel))
  return f"{sid}_{cls}_{stem}{ext}"


def _owned_files(manifest: dict) -> List[str]:
  files = [os.path.join("videos", v) for v in manifest["videos"].values()]
  files += [os.path.join("splits", hmdb51.split_file_name(c, k))
            for c in manifest["classes"] for k in range(1, len(manifest["sessions"]) + 1)]
  return files


def layout_sessions(video_dir: str, sessions_file: str, output_dir: str,
                    session_column: Optional[str] = None, link: str = "symlink",
                    overwrite: bool = False,
                    progress: Optional[Callable[[int], None]] = None) -> SessionLayout:
  """Writes `output_dir` in HMDB51's layout with leave-one-session-out splits.

  Args:
    video_dir: folder of class folders of videos.
    sessions_file: table of `<class>/<file>` and session (see the module doc).
    output_dir: dataset root to create; must not exist unless `overwrite` (then
      it must hold only a layout this function wrote).
    session_column: header name of the session column (default: the second).
    link: `symlink` (absolute links to the user's files) or `copy`.
    overwrite: replace an `output_dir` this function wrote.
    progress: called with 1 per video laid out.

  Returns:
    A `SessionLayout`.

  Raises:
    SessionsError: a bad sessions file, a listed video that is missing, fewer
      than two sessions, or a class recorded in one session only.
    FileExistsError: `output_dir` exists (without `overwrite`) or is not ours.
  """
  if link not in LINK_MODES:
    raise SessionsError(f"--link must be one of {', '.join(LINK_MODES)}, got {link!r}")
  classes = hmdb51.list_class_dirs(video_dir)
  io_utils.check_apart(output_dir, "--output_dir", video_dir, "--video_dir")
  sessions = read_sessions(sessions_file, session_column)
  present = {}
  for cls in classes:
    for name in sorted(os.listdir(os.path.join(video_dir, cls))):
      rel = os.path.join(cls, name)
      if (os.path.isfile(os.path.join(video_dir, rel)) and name.lower().endswith(video_lib.VIDEO_EXTENSIONS)
          and not name.startswith(".")):
        present[os.path.normpath(rel)] = os.path.abspath(os.path.join(video_dir, rel))
  for rel in sessions:
    if rel not in present:
      raise SessionsError(f"--sessions {sessions_file!r} lists {rel!r}, which is not a video "
                          f"in a class folder of --video_dir {video_dir!r}")
  unlisted = sorted(set(present) - set(sessions))
  ids = {label: session_id(label) for label in set(sessions.values())}
  if len(set(ids.values())) != len(ids):
    raise SessionsError(f"--sessions {sessions_file!r}: two session labels give the same "
                        f"name ({sorted(ids.values())})")
  session_ids = sorted(set(ids.values()))
  if len(session_ids) < 2:
    raise SessionsError(f"--sessions {sessions_file!r} names {len(session_ids)} session; "
                        "leave-one-session-out needs at least two")
  counts = {s: {c: 0 for c in classes} for s in session_ids}
  for rel, label in sessions.items():
    counts[ids[label]][rel.split(os.sep)[0]] += 1
  for cls in classes:
    recorded = [s for s in session_ids if counts[s][cls]]
    if len(recorded) < 2:
      raise SessionsError(f"class {cls!r} is recorded in {len(recorded)} session(s) of "
                          f"--sessions {sessions_file!r}: it could never be both trained and "
                          "tested")

  if os.path.exists(output_dir):
    if not overwrite:
      raise FileExistsError(f"--output_dir {output_dir!r} already exists; pass --overwrite "
                            "to replace it")
    io_utils.check_replaceable(output_dir, _GENERATOR, "layout_sessions", _owned_files)
  videos = {}
  with io_utils.atomic_dir(output_dir, overwrite=overwrite) as root:
    for cls in classes:
      os.makedirs(os.path.join(root, "videos", cls))
    for rel in sorted(sessions):
      cls = rel.split(os.sep)[0]
      target = os.path.join(cls, _video_name(ids[sessions[rel]], cls, rel))
      if link == "symlink":
        os.symlink(present[rel], os.path.join(root, "videos", target))
      else:
        shutil.copyfile(present[rel], os.path.join(root, "videos", target))
      videos[rel] = target
      if progress is not None:
        progress(1)
    os.makedirs(os.path.join(root, "splits"))
    for k, test_session in enumerate(session_ids, start=1):
      for cls in classes:
        entries = [hmdb51.SplitEntry(
            os.path.basename(videos[rel]),
            hmdb51.TEST if ids[sessions[rel]] == test_session else hmdb51.TRAIN)
                   for rel in sorted(videos) if rel.split(os.sep)[0] == cls]
        with open(os.path.join(root, "splits", hmdb51.split_file_name(cls, k)), "w",
                  encoding="utf-8") as f:
          f.write(hmdb51.format_split_lines(entries))
    manifest = {"generator": _GENERATOR, "classes": list(classes),
                "sessions": session_ids,
                "session_labels": {ids[label]: label for label in sorted(ids)},
                "test_session_of_split": {str(k): s for k, s in enumerate(session_ids, 1)},
                "counts": counts, "videos": videos, "unlisted": unlisted, "link": link}
    with open(os.path.join(root, io_utils.MANIFEST), "w", encoding="utf-8") as f:
      json.dump(manifest, f, indent=1)
  return SessionLayout(output_dir=output_dir, classes=tuple(classes),
                       sessions=tuple(session_ids), counts=counts, unlisted=tuple(unlisted))
