"""Tables that `sahay data build` prints: rows per source x label x language x split, and what was dropped."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from data.build import BuildResult
from data.schema import SPLITS, label_key

MAX_BAD_ROWS_SHOWN = 20


def counts(result: BuildResult) -> Counter:
    """(source, label key, lang, split) -> rows."""
    table: Counter = Counter()
    for split in SPLITS:
        ds = result.dataset[split]
        for source, labels, lang in zip(ds["source"], ds["label_set"], ds["lang"], strict=True):
            table[(source, label_key(labels), lang, split)] += 1
    return table


def rows_table(result: BuildResult) -> Table:
    table = Table(title=f"rows per source x label x language x split (fingerprint {result.fingerprint})")
    for name in ("source", "label", "lang", *SPLITS, "total"):
        table.add_column(name, justify="right" if name in (*SPLITS, "total") else "left", no_wrap=True)
    grouped: dict[tuple[str, str, str], Counter] = {}
    for (source, label, lang, split), n in counts(result).items():
        grouped.setdefault((source, label, lang), Counter())[split] += n
    totals: Counter = Counter()
    for key in sorted(grouped):
        c = grouped[key]
        totals.update(c)
        table.add_row(*key, *(str(c[s]) for s in SPLITS), str(sum(c.values())))
    table.add_section()
    table.add_row("total", "", "", *(str(totals[s]) for s in SPLITS), str(sum(totals.values())), style="bold")
    return table


def sources_table(result: BuildResult) -> Table:
    table = Table(title="sources: read, kept, cleaned, dropped")
    for name in ("source", "read", "kept", "cleaned (what: rows)", "dropped (reason: rows)"):
        table.add_column(name, no_wrap=name == "source")
    kept = Counter()
    for split in SPLITS:
        kept.update(result.dataset[split]["source"])
    for report in result.reports:
        cleaned = "\n".join(f"{k}: {v}" for k, v in sorted(report.cleaned.items())) or "-"
        dropped = "\n".join(f"{k}: {v}" for k, v in sorted(report.dropped.items())) or "-"
        table.add_row(report.source, str(report.rows_read), str(kept[report.source]), cleaned, dropped)
    if result.removed:
        removed = "\n".join(f"{k}: {v}" for k, v in sorted(result.removed.items()))
        table.add_row("(across sources)", "", "", "", removed)
    return table


def print_summary(result: BuildResult, console: Console | None = None) -> None:
    console = console or Console()
    console.print(sources_table(result))
    console.print(rows_table(result))
    for name in result.missing_sources:
        console.print(f"[yellow]warning:[/] dataset folder {name!r} was not found and was skipped")
    bad = result.bad_rows
    if bad:
        console.print(f"[yellow]{len(bad)} bad row(s)[/] (all listed in rejects.jsonl):")
        for row in bad[:MAX_BAD_ROWS_SHOWN]:
            console.print(f"  {row}", markup=False, highlight=False)
    console.print(
        f"near-duplicate groups merged: {result.groups_merged}; "
        + ", ".join(f"{s}: {len(result.dataset[s])}" for s in SPLITS)
    )
