"""Public-dataset loaders on small fixture files that reproduce each README's flaws."""

import pytest

from data.loaders import PUBLIC_NAMES, DataFileError, load_public

AT_RISK = ["intent", "ideation"]
NOT_AT_RISK = ["informational", "none"]
DEPRESSION = ["ideation", "informational", "none"]


def accounted(result):
    """Every row read is either kept or counted under a reason."""
    return len(result.records) + sum(result.report.dropped.values()) == result.report.rows_read


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_every_row_is_kept_or_counted(fixture_datasets, name):
    result = load_public(name, fixture_datasets)
    assert result.records
    assert accounted(result)
    assert all(r.source == name and r.surface == "post" for r in result.records)


def test_hinglish_drops_templated_and_empty_rows_and_merges_duplicates(fixture_datasets):
    result = load_public("hinglish_reddit_suicidal", fixture_datasets)
    dropped = result.report.dropped
    assert dropped["templated row (bare URL, title == text)"] == 1
    assert dropped["empty text"] == 1
    assert dropped["duplicate text"] == 1
    assert len(result.records) == 4
    by_set = sorted(r.label_set for r in result.records)
    assert by_set.count(DEPRESSION) == 3 and by_set.count(AT_RISK) == 1


def test_hinglish_repairs_mojibake(fixture_datasets):
    result = load_public("hinglish_reddit_suicidal", fixture_datasets)
    texts = [r.text for r in result.records]
    assert not any("â€" in t for t in texts)
    assert any("don’t" in t or "don't" in t for t in texts)
    assert result.report.cleaned["mojibake or encoding repaired"] >= 1


def test_kaggle_maps_subreddit_labels_to_sets(fixture_datasets):
    result = load_public("kaggle_suicide_detection_sample", fixture_datasets)
    assert sorted(tuple(r.label_set) for r in result.records) == [tuple(NOT_AT_RISK), tuple(AT_RISK), tuple(AT_RISK)]
    assert all(r.label is None for r in result.records)


def test_sdcnl_pools_files_merges_conflicts_and_reports_bad_row_with_line(fixture_datasets):
    result = load_public("sdcnl", fixture_datasets)
    assert len(result.records) == 3
    conflicted = [r for r in result.records if len(r.label_set) == 4]
    assert len(conflicted) == 1 and "promotion" not in conflicted[0].label_set
    assert result.report.cleaned["conflicting duplicates merged into a label set"] == 1
    [bad] = result.report.bad_rows
    assert bad.file.endswith("testing-set.csv") and bad.line == 3 and "expected 13 fields" in bad.reason
    title_only = [r for r in result.records if r.text == "Only a title"]
    assert title_only and title_only[0].label_set == AT_RISK


def test_tweet_detection_strips_trailing_space_in_labels_and_drops_empty(fixture_datasets):
    result = load_public("twitter_suicidal_tweet_detection_kaggle", fixture_datasets)
    assert sorted(tuple(r.label_set) for r in result.records) == [tuple(NOT_AT_RISK), tuple(AT_RISK)]
    assert result.report.dropped["empty text"] == 1


def test_severity_reads_unbalanced_quotes_line_by_line(fixture_datasets):
    result = load_public("twitter_suicide_severity_3class", fixture_datasets)
    texts = {r.text: r.label_set for r in result.records}
    assert texts["watched the suicide squad movie again, still bad"] == NOT_AT_RISK
    assert texts["placeholder tweet with unbalanced quoting"] == AT_RISK
    assert texts['placeholder tweet discussing a "quoted" phrase'] == ["ideation", "informational"]
    lines = sorted((b.line, b.reason.split()[0]) for b in result.report.bad_rows)
    assert lines == [(5, "unknown"), (6, "expected")]


def test_missing_folder_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="sdcnl"):
        load_public("sdcnl", tmp_path)


def test_malformed_header_names_the_file_and_line(tmp_path):
    folder = tmp_path / "twitter_suicidal_intention"
    folder.mkdir()
    (folder / "twitter-suicidal_data.csv").write_text("text,label\nhello there friend,0\n")
    with pytest.raises(DataFileError, match=r"twitter-suicidal_data.csv:1: missing column"):
        load_public("twitter_suicidal_intention", tmp_path)
