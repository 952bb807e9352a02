"""`sahay data describe`: what a labelled corpus covers — labels, surfaces, tags and lengths per language.

Counts only: it never prints texts. The datasheet's seed-corpus tables come from this command.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.table import Table

from data.schema import HARD_CASE_TAGS, STYLE_TAGS, SURFACES, Record, label_key
from data.taxonomy import LABELS

LENGTH_BANDS = ((3, 8), (9, 40), (41, 100))


def word_count(text: str) -> int:
    """Whitespace tokens that hold a letter (regex \\w would split Devanagari at every vowel sign)."""
    return sum(any(c.isalpha() for c in token) for token in text.split())


def _table(title: str, rows: Sequence[str], langs: Sequence[str], count) -> Table:
    table = Table(title=title)
    table.add_column(title.split(" ")[0])
    for lang in langs:
        table.add_column(lang, justify="right")
    for row in rows:
        table.add_row(row, *(str(count(row, lang)) for lang in langs))
    return table


def to_markdown(table: Table) -> str:
    """A Rich table as a Markdown table (for the datasheet)."""
    headers = [str(c.header) for c in table.columns]
    cells = [[str(cell) for cell in c._cells] for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in zip(*cells, strict=True)]
    return "\n".join(lines)


def describe(records: Sequence[Record]) -> list[Table]:
    """Tables of labels, surfaces, tags and length bands per language."""
    langs = sorted({r.lang for r in records})
    labels = Counter((label_key(r.label_set), r.lang) for r in records)
    label_rows = [
        *(lb for lb in LABELS if any(k[0] == lb for k in labels)),
        *sorted({k[0] for k in labels} - set(LABELS)),
    ]
    surfaces = Counter((r.surface, r.lang) for r in records)
    tags = Counter((t, r.lang) for r in records for t in r.tags)
    bands = Counter((_band(word_count(r.text)), r.lang) for r in records)
    totals = Counter(r.lang for r in records)
    return [
        _table(
            "labels", [*label_rows, "total"], langs, lambda k, lang: labels[k, lang] if k != "total" else totals[lang]
        ),
        _table("surfaces", list(SURFACES), langs, lambda k, lang: surfaces[k, lang]),
        _table("hard-case and style tags", [*HARD_CASE_TAGS, *STYLE_TAGS], langs, lambda k, lang: tags[k, lang]),
        _table(
            "length in words", [_band(lo) for lo, _ in LENGTH_BANDS] + ["other"], langs, lambda k, lang: bands[k, lang]
        ),
    ]


def _band(n: int) -> str:
    for lo, hi in LENGTH_BANDS:
        if lo <= n <= hi:
            return f"{lo}-{hi}"
    return "other"
