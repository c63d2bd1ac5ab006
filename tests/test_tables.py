from conv_course.tables import format_table


def test_format_table_aligns_columns_and_marks_missing():
    text = format_table([{"x": 1.5, "y": None}, {"x": 10.25, "y": 3}],
                        [("x", "x", "{:.2f}"), ("y", "why", "{}")])
    lines = text.splitlines()
    assert lines[0].split() == ["x", "why"]
    assert lines[2].split() == ["1.50", "-"]
    assert len({len(line) for line in lines}) == 1
