"""The shared text-table helper."""

from lenetlab.textfmt import align


def test_align_pads_columns_and_right_aligns_numbers():
    lines = align([["layer", "params"], ["C1", "156"], ["output", "1,000"]], right={1})
    assert lines == ["layer   params", "C1         156", "output   1,000"]


def test_align_strips_trailing_space_and_accepts_any_cells():
    assert align([["a", "long"], [1, None]]) == ["a  long", "1  None"]
    assert align([]) == []


def test_a_table_is_written_once_and_shown_as_text_or_markdown():
    from lenetlab.textfmt import Table, render

    t = Table(["path", "ms"], [["`lenet5`", "**1.50**"], ["a|b", "12.00"]], "lr")
    assert t.markdown() == ["| path | ms |", "|---|---:|", "| `lenet5` | **1.50** |", "| a\\|b | 12.00 |"]
    assert t.text() == ["path       ms", "-------------", "lenet5   1.50", "a|b     12.00"]
    assert render([t, "Note: **bold**."], markdown=False)[-2:] == ["", "Note: bold."]
    assert render(["one", "two"], markdown=True) == ["one", "", "two"]


def test_number_formats():
    from lenetlab.textfmt import num, pct, ratio, sci, sig, threads

    assert [sig(0.018234), sig(15.23), sig(1388.2), sig(0), sig(None)] == ["0.0182", "15.2", "1,388", "0", "n/a"]
    assert [ratio(1.684), ratio(1065.2), pct(0.771), num(55000), sci(4.8e-6)] == [
        "1.68×",
        "1,065×",
        "0.77%",
        "55,000",
        "4.8e-06",
    ]
    assert threads(1) == "1 thread" and threads(2) == "2 threads"
