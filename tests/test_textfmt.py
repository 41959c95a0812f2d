"""The shared text-table helper."""

from lenetlab.textfmt import align


def test_align_pads_columns_and_right_aligns_numbers():
    lines = align([["layer", "params"], ["C1", "156"], ["output", "1,000"]], right={1})
    assert lines == ["layer   params", "C1         156", "output   1,000"]


def test_align_strips_trailing_space_and_accepts_any_cells():
    assert align([["a", "long"], [1, None]]) == ["a  long", "1  None"]
    assert align([]) == []
