r"""Lays out a folder of class folders as leave-one-session-out splits in HMDB51's layout.

  python tools/layout_sessions.py --video_dir=my_recordings --sessions=sessions.tsv \
      --output_dir=/tmp/my_set [--session_column=session] [--link=symlink|copy]

--video_dir holds one folder per class; --sessions is a table (tab or comma
separated, with a header) whose first column is each video's path relative to
--video_dir (`<class>/<file>`) and whose --session_column (default: the second
column) names the session (person, day, room) it was recorded in. Split k tests
on the k-th session and trains on the others; prepare_hmdb51 then holds out
whole training sessions as validation. Then:

  python tools/prepare_hmdb51.py --video_dir=/tmp/my_set/videos \
      --split_dir=/tmp/my_set/splits --output_dir=/tmp/my_set_data --splits=1,2,3,4
"""

from absl import app
from absl import flags
import tqdm

from tsnet_tf.data import sessions
from tsnet_tf.utils import cli

_VIDEO_DIR = flags.DEFINE_string("video_dir", None, "Folder of class folders of videos.",
                                 required=True)
_SESSIONS = flags.DEFINE_string("sessions", None, "Table of <class>/<file> and its recording "
                                "session (header row; tab- or comma-separated).", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Dataset root to create.", required=True)
_SESSION_COLUMN = flags.DEFINE_string("session_column", None, "Header name of the session "
                                      "column (default: the second column).")
_LINK = flags.DEFINE_enum("link", "symlink", list(sessions.LINK_MODES),
                          "Link the videos (your files stay where they are) or copy them.")
_OVERWRITE = flags.DEFINE_boolean("overwrite", False, "Replace --output_dir if it holds only "
                                  "a layout this tool wrote.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    with tqdm.tqdm(unit="video", desc="layout_sessions", delay=1) as bar:
      layout = sessions.layout_sessions(
          _VIDEO_DIR.value, _SESSIONS.value, _OUTPUT_DIR.value,
          session_column=_SESSION_COLUMN.value, link=_LINK.value,
          overwrite=_OVERWRITE.value, progress=bar.update)
  except ValueError as e:
    if isinstance(e, sessions.SessionsError):
      raise  # cli.run reports it (exit 1).
    raise app.UsageError(str(e)) from e
  print(f"wrote {layout.output_dir}: {len(layout.classes)} classes, "
        f"{len(layout.sessions)} sessions")
  for k, s in enumerate(layout.sessions, start=1):
    per_class = ", ".join(f"{c} {n}" for c, n in layout.counts[s].items())
    print(f"split {k}: test session {s} ({per_class})")
  if layout.unlisted:
    print(f"{len(layout.unlisted)} videos not in --sessions were left out, e.g. "
          f"{layout.unlisted[0]}")
  splits = ",".join(str(k) for k in range(1, len(layout.sessions) + 1))
  print(f"next: tools/prepare_hmdb51.py --video_dir={layout.video_dir} "
        f"--split_dir={layout.split_dir} --output_dir=<data dir> --splits={splits} "
        "--validation_groups=shared")
  return 0


if __name__ == "__main__":
  cli.run(main)
