"""tsnet_tf.data.sessions: leave-one-session-out splits in HMDB51's layout."""

import json
import os

import numpy as np
import pytest

from tsnet_tf.data import hmdb51
from tsnet_tf.data import sessions
from tsnet_tf.data import video as video_lib

# class -> {file: session label}; "wave" is missing from session "C".
_RECORDINGS = {
    "swipe": {"a1.mp4": "A day_1", "a2.mp4": "A day_1", "b1.mp4": "B (Bo)", "c1.mp4": "C"},
    "wave": {"a3.mp4": "A day_1", "b2.mp4": "B (Bo)", "b3.mp4": "B (Bo)"},
}


def _write_set(root, recordings=_RECORDINGS, header="path\tperson\tsession\n"):
  frames = np.zeros((2, 8, 8, 3), np.uint8)
  lines = [header]
  for cls, files in recordings.items():
    os.makedirs(root / "rec" / cls, exist_ok=True)
    for name, label in files.items():
      video_lib.write_video(str(root / "rec" / cls / name), frames, 10)
      lines.append(f"{cls}/{name}\tsomeone\t{label}\n")
  (root / "sessions.tsv").write_text("".join(lines))
  return str(root / "rec"), str(root / "sessions.tsv")


def test_splits_test_on_one_session_and_name_it_as_the_group(tmp_path):
  video_dir, table = _write_set(tmp_path)
  layout = sessions.layout_sessions(video_dir, table, str(tmp_path / "out"),
                                    session_column="session")
  assert layout.sessions == ("A-day-1", "B-Bo", "C")
  assert layout.counts["C"] == {"swipe": 1, "wave": 0}
  read = hmdb51.read_splits(layout.split_dir, layout.classes, splits=[1, 2, 3])
  for k, test_session in enumerate(layout.sessions, start=1):
    for cls in layout.classes:
      entries = read[k][cls]
      assert len(entries) == len(_RECORDINGS[cls])
      for e in entries:
        group = hmdb51.video_group(e.video, cls)
        assert group in layout.sessions
        assert (e.subset_id == hmdb51.TEST) == (group == test_session), (k, e)
  # The videos are links to the user's files, untouched.
  link = os.path.join(layout.video_dir, "wave", "B-Bo_wave_b2.mp4")
  assert os.path.realpath(link) == os.path.realpath(os.path.join(video_dir, "wave", "b2.mp4"))
  manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
  assert manifest["test_session_of_split"] == {"1": "A-day-1", "2": "B-Bo", "3": "C"}


def test_validation_holds_out_whole_training_sessions(tmp_path):
  video_dir, table = _write_set(tmp_path)
  layout = sessions.layout_sessions(video_dir, table, str(tmp_path / "out"),
                                    session_column="session")
  entries = hmdb51.read_splits(layout.split_dir, layout.classes, splits=[3])[3]["swipe"]
  carved = hmdb51.carve_validation(entries, "swipe", fraction=0.3)
  held = {hmdb51.video_group(e.video, "swipe") for e in carved
          if e.subset_id == hmdb51.VALIDATION}
  kept = {hmdb51.video_group(e.video, "swipe") for e in carved if e.subset_id == hmdb51.TRAIN}
  assert len(held) == 1 and not held & kept and kept
  # Both takes of session A go the same way.
  a = {e.subset_id for e in carved if e.video.startswith("A-day-1_")}
  assert len(a) == 1


def test_copy_mode_and_overwrite_of_its_own_layout_only(tmp_path):
  video_dir, table = _write_set(tmp_path)
  out = str(tmp_path / "out")
  sessions.layout_sessions(video_dir, table, out, session_column="session", link="copy")
  copied = os.path.join(out, "videos", "swipe", "C_swipe_c1.mp4")
  assert os.path.isfile(copied) and not os.path.islink(copied)
  with pytest.raises(FileExistsError, match="already exists"):
    sessions.layout_sessions(video_dir, table, out, session_column="session")
  sessions.layout_sessions(video_dir, table, out, session_column="session", overwrite=True)
  (tmp_path / "out" / "mine.txt").write_text("not the tool's")
  with pytest.raises(FileExistsError, match="mine.txt"):
    sessions.layout_sessions(video_dir, table, out, session_column="session", overwrite=True)


@pytest.mark.parametrize("recordings, column, needle", [
    (_RECORDINGS, "day", "has no column 'day'"),
    ({"swipe": {"a.mp4": "A", "b.mp4": "B"}, "wave": {"c.mp4": "A", "d.mp4": "A"}}, "session",
     "class 'wave' is recorded in 1 session"),
    ({"swipe": {"a.mp4": "A", "b.mp4": "A"}}, "session", "names 1 session"),
])
def test_bad_tables_are_one_line_naming_the_file(tmp_path, recordings, column, needle):
  video_dir, table = _write_set(tmp_path, recordings)
  with pytest.raises(sessions.SessionsError, match=needle.replace("(", r"\(")):
    sessions.layout_sessions(video_dir, table, str(tmp_path / "out"), session_column=column)
  assert not (tmp_path / "out").exists()


def test_a_listed_video_that_is_missing_is_named(tmp_path):
  video_dir, table = _write_set(tmp_path)
  with open(table, "a") as f:
    f.write("wave/gone.mp4\tx\tB (Bo)\n")
  with pytest.raises(sessions.SessionsError, match="lists 'wave/gone.mp4'"):
    sessions.layout_sessions(video_dir, table, str(tmp_path / "out"), session_column="session")


def test_default_session_column_is_the_second_and_unlisted_videos_are_left_out(tmp_path):
  video_dir, _ = _write_set(tmp_path)
  table = tmp_path / "two.csv"
  table.write_text("file,who\nswipe/a1.mp4,A\nswipe/b1.mp4,B\nwave/a3.mp4,A\nwave/b2.mp4,B\n")
  layout = sessions.layout_sessions(video_dir, str(table), str(tmp_path / "out"))
  assert layout.sessions == ("A", "B")
  assert layout.unlisted == ("swipe/a2.mp4", "swipe/c1.mp4", "wave/b3.mp4")


def test_session_id_never_holds_an_underscore():
  assert sessions.session_id("S1_batch (Varun_Jain)") == "S1-batch-Varun-Jain"
  with pytest.raises(sessions.SessionsError):
    sessions.session_id("__")
