import pytest

from tsnet_tf.data import hmdb51


def test_classes_are_51_in_sorted_order():
  assert len(hmdb51.CLASSES) == 51
  assert list(hmdb51.CLASSES) == sorted(hmdb51.CLASSES)


def test_parse_split_file_allows_trailing_spaces(tmp_path):
  p = tmp_path / "clap_test_split1.txt"
  p.write_text("a.avi 1 \nb.avi 2  \n\nc.avi 0\n")
  entries = hmdb51.parse_split_file(str(p))
  assert [(e.video, e.subset_id) for e in entries] == [("a.avi", 1), ("b.avi", 2), ("c.avi", 0)]


def test_format_then_parse_round_trips(tmp_path):
  entries = [hmdb51.SplitEntry("x.avi", 1), hmdb51.SplitEntry("y.avi", 2)]
  p = tmp_path / "s.txt"
  p.write_text(hmdb51.format_split_lines(entries))
  assert hmdb51.parse_split_file(str(p)) == entries


def test_malformed_line_names_file_and_line(tmp_path):
  p = tmp_path / "clap_test_split1.txt"
  p.write_text("a.avi 1\nb.avi 7\n")
  with pytest.raises(hmdb51.LayoutError, match=r"clap_test_split1.txt:2"):
    hmdb51.parse_split_file(str(p))


def test_read_splits_missing_file_is_clear_error(tmp_path):
  (tmp_path / "clap_test_split1.txt").write_text("a.avi 1\n")
  with pytest.raises(hmdb51.LayoutError, match="missing split file.*split2"):
    hmdb51.read_splits(str(tmp_path), ["clap"], splits=(1, 2))


def test_read_splits_unknown_class_is_clear_error(tmp_path):
  (tmp_path / "clap_test_split1.txt").write_text("a.avi 1\n")
  (tmp_path / "wave_test_split1.txt").write_text("b.avi 1\n")
  with pytest.raises(hmdb51.LayoutError, match="'wave'"):
    hmdb51.read_splits(str(tmp_path), ["clap"], splits=(1,))


def test_list_class_dirs(tmp_path):
  for c in ("wave", "clap"):
    (tmp_path / c).mkdir()
  assert hmdb51.list_class_dirs(str(tmp_path)) == ["clap", "wave"]
  with pytest.raises(hmdb51.LayoutError, match="not a directory"):
    hmdb51.list_class_dirs(str(tmp_path / "nope"))


def test_video_group_is_the_source_before_the_class():
  assert hmdb51.video_group("April_09_brush_hair_u_nm_np1_ba_goo_0.avi",
                            "brush_hair") == "April_09"
  assert hmdb51.video_group("Synth0003_move_left_f_nm_np1_fr_goo_0.avi",
                            "move_left") == "Synth0003"
  # No class in the name: the name less its clip number.
  assert hmdb51.video_group("clipA_7.avi", "walk") == "clipA"


def test_carve_validation_holds_out_whole_groups():
  entries = [hmdb51.SplitEntry(f"{src}_walk_f_nm_np1_fr_goo_{i}.avi", sid)
             for src, sid in [("A", 1), ("B", 1), ("C", 1), ("D", 1), ("E", 1),
                              ("T", 2), ("U", 0)] for i in range(3)]
  carved = hmdb51.carve_validation(entries, "walk", 0.2)
  held = {hmdb51.video_group(e.video, "walk") for e in carved
          if e.subset_id == hmdb51.VALIDATION}
  assert len(held) == 1  # round(0.2 * 5 groups)
  for e, c in zip(entries, carved):
    group = hmdb51.video_group(e.video, "walk")
    # Every clip of a held-out group moves; test and unused entries never do.
    expected = hmdb51.VALIDATION if group in held else e.subset_id
    assert c.subset_id == expected
  # Deterministic, and the same groups for another class listing the same sources.
  assert hmdb51.carve_validation(entries, "walk", 0.2) == carved
  other = [hmdb51.SplitEntry(e.video.replace("_walk_", "_run_"), e.subset_id)
           for e in entries]
  held_run = {hmdb51.video_group(e.video, "run") for e in
              hmdb51.carve_validation(other, "run", 0.2) if e.subset_id == hmdb51.VALIDATION}
  assert held_run == held
  # Never the last training group; none when the fraction is 0.
  two = entries[:6]
  assert sum(e.subset_id == 1 for e in hmdb51.carve_validation(two, "walk", 0.9)) == 3
  assert hmdb51.carve_validation(entries, "walk", 0.0) == entries
  with pytest.raises(ValueError, match="validation_fraction"):
    hmdb51.carve_validation(entries, "walk", 1.0)


def _session_entries(sizes, test_session="T"):
  """One class's entries: `sizes[session]` training clips per session, 2 test clips."""
  entries = [hmdb51.SplitEntry(f"{s}_walk_{i}.avi", hmdb51.TRAIN)
             for s, n in sizes.items() for i in range(n)]
  return entries + [hmdb51.SplitEntry(f"{test_session}_walk_{i}.avi", 2) for i in range(2)]


def _held(carved):
  return {cls: sorted({hmdb51.video_group(e.video, cls) for e in entries
                       if e.subset_id == hmdb51.VALIDATION})
          for cls, entries in carved.items()}


def test_carve_shared_validation_holds_out_sessions_that_fit_the_fraction():
  # Three training sessions of unequal size, as in a leave-one-session-out split:
  # per class the group count rule holds out one session whatever its size.
  walk = {"big": 10, "mid": 5, "small": 4}
  per_class = {"walk": _session_entries(walk),
               "run": [hmdb51.SplitEntry(e.video.replace("_walk_", "_run_"), e.subset_id)
                       for e in _session_entries(walk)]}
  carved = hmdb51.carve_shared_validation(per_class, 0.3)
  held = _held(carved)
  # 30 % of 38 training clips is 11.4: "big" (20) never fits; of "mid" (10) and
  # "small" (8) only one fits, and the same one in both classes.
  assert held["walk"] == held["run"]
  assert held["walk"] in (["mid"], ["small"])
  for cls, entries in carved.items():
    for e, c in zip(per_class[cls], entries):
      group = hmdb51.video_group(e.video, cls)
      expected = hmdb51.VALIDATION if group in held[cls] else e.subset_id
      assert c.subset_id == expected  # test clips never move
  # Deterministic; a larger fraction takes more whole sessions, never all.
  assert hmdb51.carve_shared_validation(per_class, 0.3) == carved
  assert len(_held(hmdb51.carve_shared_validation(per_class, 0.5))["walk"]) == 2
  assert hmdb51.carve_shared_validation(per_class, 0.0) == {k: list(v)
                                                             for k, v in per_class.items()}


def test_carve_shared_validation_falls_back_to_the_smallest_and_keeps_training():
  # No session fits in 10 % of 19: the smallest is held out.
  per_class = {"walk": _session_entries({"big": 10, "mid": 5, "small": 4})}
  assert _held(hmdb51.carve_shared_validation(per_class, 0.1))["walk"] == ["small"]
  # A class recorded only in the held-out session trains on it (no validation).
  # Here the smallest session, "tiny", holds jump's only training clips.
  per_class["jump"] = [hmdb51.SplitEntry(f"tiny_jump_{i}.avi", hmdb51.TRAIN) for i in range(3)]
  carved = hmdb51.carve_shared_validation(per_class, 0.1)
  assert _held(carved) == {"walk": [], "jump": []}
  assert all(e.subset_id == hmdb51.TRAIN for e in carved["jump"])
  with pytest.raises(ValueError, match="validation_fraction"):
    hmdb51.carve_shared_validation(per_class, 1.0)
