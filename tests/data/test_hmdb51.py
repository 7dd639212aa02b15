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
