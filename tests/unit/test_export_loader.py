"""The platform-export loader: CSV, JSONL and Parquet, bad rows reported with file and line."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data.loaders import DataFileError, load_export


def test_csv_with_labels_and_label_sets(tmp_path):
    path = tmp_path / "decisions.csv"
    path.write_text(
        "id,text,label,surface,group,tags,moderator\n"
        "a1,the traffic today is unreal,none,comment,g1,everyday_stress,m7\n"
        "a2,a second message for the export test,ideation|intent,chat,,,m7\n"
    )
    result = load_export(path)
    assert [r.id for r in result.records] == ["a1", "a2"]
    assert result.records[0].label == "none" and result.records[0].group == "g1"
    assert result.records[0].tags == ["everyday_stress"]
    assert result.records[1].label_set == ["intent", "ideation"] and result.records[1].label is None
    assert result.records[1].source == "export:decisions.csv"
    assert any("ignored columns: moderator" in k for k in result.report.cleaned)


def test_jsonl_bad_rows_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "export.jsonl"
    lines = [
        json.dumps({"text": "a fine row about cricket scores", "label": "none", "lang": "en"}),
        "{not json",
        json.dumps({"text": "", "label": "none"}),
        json.dumps({"text": "a row with a label outside the taxonomy", "label": "suicidal"}),
        json.dumps({"text": "a row with no label at all"}),
        json.dumps({"text": "a row with a bad surface value", "label": "none", "surface": "tweet"}),
        json.dumps({"text": "a row with a label set list", "label_set": ["none", "informational"]}),
    ]
    path.write_text("\n".join(lines) + "\n")
    result = load_export(path)
    assert len(result.records) == 2
    bad = {b.line: b.reason for b in result.report.bad_rows}
    assert set(bad) == {2, 3, 4, 5, 6}
    assert "invalid JSON" in bad[2]
    assert "empty text" in bad[3]
    assert "unknown label 'suicidal'" in bad[4]
    assert "missing label" in bad[5]
    assert "surface" in bad[6]
    assert all(b.file == str(path) for b in result.report.bad_rows)
    assert result.report.rows_read == len(result.records) + sum(result.report.dropped.values())


def test_parquet_rows(tmp_path):
    path = tmp_path / "export.parquet"
    table = pa.table({"text": ["kal match dekhne chalenge yaar", None], "label": ["none", "none"]})
    pq.write_table(table, path)
    result = load_export(path)
    assert len(result.records) == 1
    assert result.records[0].lang == "hi-Latn"
    assert [(b.line, b.reason) for b in result.report.bad_rows] == [(2, "missing or empty text")]


def test_unusable_files_name_the_file(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        load_export(tmp_path / "nope.csv")
    other = tmp_path / "export.xlsx"
    other.write_text("x")
    with pytest.raises(DataFileError, match="unsupported export format"):
        load_export(other)
    nolabel = tmp_path / "nolabel.csv"
    nolabel.write_text("text\nhello there\n")
    with pytest.raises(DataFileError, match=r"nolabel.csv:1: needs one of the columns \['label', 'label_set'\]"):
        load_export(nolabel)
    nolabel_jsonl = tmp_path / "nolabel.jsonl"
    nolabel_jsonl.write_text('{"text": "hello there"}\n')
    with pytest.raises(DataFileError, match="no `label` or `label_set` column"):
        load_export(nolabel_jsonl)
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('text,label\nfine row here,none\n"a quote never closed,none\nmore,none\n')
    with pytest.raises(DataFileError, match=r"unclosed\.csv:3: cannot parse CSV"):
        load_export(unclosed)
