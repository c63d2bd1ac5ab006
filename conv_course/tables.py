"""Plain-text tables for terminals: benchmark results, grading summaries, parameter listings."""

__all__ = ["format_table"]


def format_table(rows, columns):
    """A plain-text table; `rows` are dicts, `columns` (key, header, format) triples."""
    cells = [[h for _, h, _ in columns]]
    for row in rows:
        cells.append([fmt.format(row[key]) if row.get(key) is not None else "-" for key, _, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
