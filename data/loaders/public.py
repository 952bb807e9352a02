"""Loaders for the public English/Hinglish sets in ../shared/datasets, one spec per folder.

Each maps the folder's coarse label to a *label set* (DESIGN.md, "Coarse labels are label sets") and
cleans the flaws its README lists. Text is kept as published (after mojibake repair); author names,
URLs and other metadata columns are not read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from data.langid import detect_lang
from data.loaders.common import (
    DataFileError,
    LoadReport,
    LoadResult,
    clean_text,
    make_record,
    merge_duplicates,
    read_csv,
)
from data.normalize import dedup_key

AT_RISK = ("ideation", "intent")  # r/SuicideWatch, "suicidal" flags
NOT_AT_RISK = ("none", "informational")  # binary "not suicidal"
DEPRESSION = ("none", "informational", "ideation")  # r/depression: often at risk, rarely imminent


@dataclass(frozen=True)
class PublicSource:
    """How to read one folder: files, columns, label mapping and row-level cleaning."""

    name: str
    files: tuple[str, ...]
    columns: tuple[str, ...]
    text: Callable[[dict[str, str]], str]
    label_sets: dict[str, tuple[str, ...]]
    label_column: str
    skip: Callable[[dict[str, str]], str | None] = lambda row: None
    """Returns a reason when a row is a known artefact to drop (e.g. templated rows)."""


def _hinglish_templated(row: dict[str, str]) -> str | None:
    # README: 500 positives have the bare reddit.com URL and Title == Text: generated, not real posts.
    if row["URL"].strip() == "https://www.reddit.com" and row["Title"].strip() == row["Text"].strip():
        return "templated row (bare URL, title == text)"
    return None


def _title_and_body(row: dict[str, str]) -> str:
    title, body = row["title"].strip(), row["selftext"].strip()
    return f"{title}\n\n{body}" if body and body != title else title


SOURCES: dict[str, PublicSource] = {
    s.name: s
    for s in (
        PublicSource(
            name="hinglish_reddit_suicidal",
            files=("hhinglish_suicidal_postss.csv",),
            columns=("Title", "Text", "URL", "Suicidal"),
            text=lambda row: row["Text"],
            label_column="Suicidal",
            # Label 0 posts are real but some are at risk (README): allow ideation.
            label_sets={"1": AT_RISK, "0": DEPRESSION},
            skip=_hinglish_templated,
        ),
        PublicSource(
            name="kaggle_suicide_detection_sample",
            files=("Suicide_Detection_sample.csv",),
            columns=("text", "class"),
            text=lambda row: row["text"],
            label_column="class",
            label_sets={"suicide": AT_RISK, "non-suicide": NOT_AT_RISK},  # r/SuicideWatch vs r/teenagers
        ),
        PublicSource(
            name="sdcnl",
            files=("training-set.csv", "testing-set.csv"),  # pooled: we re-split, and the two overlap
            columns=("title", "selftext", "is_suicide"),
            text=_title_and_body,
            label_column="is_suicide",
            label_sets={"1": AT_RISK, "0": DEPRESSION},  # r/SuicideWatch vs r/depression
        ),
        PublicSource(
            name="twitter_suicidal_intention",
            files=("twitter-suicidal_data.csv",),
            columns=("tweet", "intention"),
            text=lambda row: row["tweet"],
            label_column="intention",
            label_sets={"1": AT_RISK, "0": NOT_AT_RISK},
        ),
        PublicSource(
            name="twitter_suicidal_tweet_detection_kaggle",
            files=("Twitter_Suicide_Dataset.csv",),
            columns=("Tweet", "Suicide"),
            text=lambda row: row["Tweet"],
            label_column="Suicide",  # values carry a trailing space; stripped before lookup
            label_sets={"Potential Suicide post": AT_RISK, "Not Suicide post": NOT_AT_RISK},
        ),
    )
}

SEVERITY = "twitter_suicide_severity_3class"
# 0 not suicidal; 1 "nearly related to suicidal ideation" (in practice discussion, news and ideation);
# 2 "potentially committing suicide" (ideation or intent; many are news, so the set stays wide of intent only).
SEVERITY_LABEL_SETS = {"0": NOT_AT_RISK, "1": ("ideation", "informational"), "2": AT_RISK}


def load_public(name: str, datasets_dir: Path) -> LoadResult:
    """Load one public folder by name. Raises FileNotFoundError when the folder is absent."""
    folder = datasets_dir / name
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder {folder} not found")
    if name == SEVERITY:
        return _load_severity(folder)
    spec = SOURCES[name]
    report = LoadReport(name)
    records = []
    for filename in spec.files:
        path = folder / filename
        if not path.is_file():
            raise DataFileError(path, None, "file listed for this dataset is missing")
        for line, row in read_csv(path, list(spec.columns)):
            report.rows_read += 1
            if "__error__" in row:
                report.bad(path, line, row["__error__"])
                continue
            reason = spec.skip(row)
            if reason:
                report.dropped[reason] += 1
                continue
            raw_label = row[spec.label_column].strip()
            if raw_label not in spec.label_sets:
                report.bad(path, line, f"unknown label {raw_label!r} in column {spec.label_column}")
                continue
            text = clean_text(spec.text(row), report)
            if not text:
                report.dropped["empty text"] += 1
                continue
            rec = make_record(
                report,
                path,
                line,
                id=f"{name}:{path.stem}:{line}",
                text=text,
                label_set=list(spec.label_sets[raw_label]),
                lang=detect_lang(text),
                source=name,
                surface="post",
            )
            if rec is not None:
                records.append(rec)
    return LoadResult(merge_duplicates(records, report, dedup_key), report)


def _load_severity(folder: Path) -> LoadResult:
    """Labelled_tweets.tsv has unbalanced quotes (README): read it line by line, split on the first two tabs."""
    path = folder / "Labelled_tweets.tsv"
    if not path.is_file():
        raise DataFileError(path, None, "file listed for this dataset is missing")
    report = LoadReport(SEVERITY)
    records = []
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or lines[0].split("\t")[:3] != ["id", "category", "tweet"]:
        raise DataFileError(path, 1, "expected the header 'id<TAB>category<TAB>tweet'")
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        report.rows_read += 1
        parts = line.split("\t", 2)
        if len(parts) != 3:
            report.bad(path, line_no, f"expected 3 tab-separated fields, got {len(parts)}")
            continue
        _, category, tweet = parts
        if category.strip() not in SEVERITY_LABEL_SETS:
            report.bad(path, line_no, f"unknown category {category!r}")
            continue
        tweet = tweet.strip()
        if tweet.startswith('"'):
            tweet = tweet[1:-1] if tweet.endswith('"') and len(tweet) > 1 else tweet[1:]
            report.cleaned["unbalanced quoting repaired"] += 1
        text = clean_text(tweet.replace('""', '"'), report)
        if not text:
            report.dropped["empty text"] += 1
            continue
        rec = make_record(
            report,
            path,
            line_no,
            id=f"{SEVERITY}:{line_no}",
            text=text,
            label_set=list(SEVERITY_LABEL_SETS[category.strip()]),
            lang=detect_lang(text),
            source=SEVERITY,
            surface="post",
        )
        if rec is not None:
            records.append(rec)
    return LoadResult(merge_duplicates(records, report, dedup_key), report)
