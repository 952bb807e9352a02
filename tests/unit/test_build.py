"""`data build` on fixtures: determinism, no leakage across splits, missing folders, bad rows, saving."""

import json
import random
from itertools import combinations

import pytest
from datasets import load_from_disk

from data.build import build, build_and_save
from data.dedup import jaccard, shingles
from data.normalize import dedup_key
from data.schema import SPLITS
from data.settings import DataSettings
from data.taxonomy import LABELS

NEAR_DUP_THRESHOLD = 0.6


def _sentence(rng, vocab, n=9):
    return " ".join(rng.choice(vocab) for _ in range(n))


@pytest.fixture
def mini_seed(tmp_path):
    """90 distinct seed rows over 3 languages x 5 labels, plus 6 deliberate near-duplicates."""
    rng = random.Random(0)
    syllables = ["ka", "ri", "mo", "ten", "sul", "pra", "vi", "do", "nex", "lu", "ga", "che", "bor", "fi"]
    vocab = sorted({"".join(rng.choice(syllables) for _ in range(3)) for _ in range(400)})
    rows = []
    for lang in ("en", "hi", "hi-Latn"):
        for label in LABELS:
            for k in range(6):
                rows.append(
                    {
                        "id": f"{lang}-{label}-{k}",
                        "text": _sentence(rng, vocab),
                        "label": label,
                        "lang": lang,
                        "surface": "post",
                        "tags": ["slang"],
                    }
                )
    for k in range(6):
        base = rows[k * 13]
        rows.append({**base, "id": base["id"] + "-dup", "text": base["text"] + " " + rng.choice(vocab)})
    folder = tmp_path / "seed"
    folder.mkdir()
    (folder / "mini.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def settings(mini_seed, fixture_datasets, tmp_path):
    return DataSettings(seed_dir=mini_seed, datasets_dir=fixture_datasets, data_dir=tmp_path / "out")


def _ids(result):
    return {s: list(result.dataset[s]["id"]) for s in SPLITS}


def test_same_inputs_give_identical_splits(settings):
    first, second = build(settings), build(settings)
    assert first.fingerprint == second.fingerprint
    assert _ids(first) == _ids(second)
    other = build(settings.model_copy(update={"split_seed": settings.split_seed + 1}))
    assert other.fingerprint != first.fingerprint


def test_no_near_duplicate_crosses_splits(settings):
    result = build(settings)
    rows = [(s, dedup_key(t)) for s in SPLITS for t in result.dataset[s]["text"]]
    sets = [(s, shingles(k)) for s, k in rows]
    crossing = [
        (a[0], b[0]) for a, b in combinations(sets, 2) if a[0] != b[0] and jaccard(a[1], b[1]) >= NEAR_DUP_THRESHOLD
    ]
    assert crossing == []
    assert result.groups_merged >= 6  # the deliberate near-duplicates were tied, not left to chance


def test_public_sources_are_train_only_and_seed_is_split(settings):
    result = build(settings)
    for split in ("validation", "test"):
        assert set(result.dataset[split]["source"]) == {"seed"}
    assert len(result.dataset["test"]) > 0 and len(result.dataset["validation"]) > 0
    train_sources = set(result.dataset["train"]["source"])
    assert {"seed", "sdcnl", "twitter_suicide_severity_3class"} <= train_sources


def test_stratified_by_label_and_language(settings):
    result = build(settings)
    for lang in ("en", "hi", "hi-Latn"):
        for label in LABELS:
            test_rows = [
                1
                for l_, lb in zip(result.dataset["test"]["lang"], result.dataset["test"]["label"], strict=True)
                if l_ == lang and lb == label
            ]
            assert len(test_rows) >= 1, (lang, label)


def test_missing_folder_is_skipped_with_a_warning(settings, tmp_path, caplog):
    empty = tmp_path / "no_datasets"
    empty.mkdir()
    result = build(settings.model_copy(update={"datasets_dir": empty}))
    assert len(result.missing_sources) == 6
    assert "sdcnl" in caplog.text and "not found" in caplog.text
    assert set(result.dataset["train"]["source"]) == {"seed"}


def test_bad_rows_are_counted_and_saved(settings):
    result = build_and_save(settings)
    out = settings.data_dir
    rejects = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == len(result.bad_rows) >= 3
    assert all(r["file"] and r["line"] >= 1 and r["reason"] for r in rejects)
    saved = load_from_disk(str(out))
    assert {s: len(saved[s]) for s in SPLITS} == {s: len(result.dataset[s]) for s in SPLITS}
    assert all(saved["train"]["text_norm"])
    report = json.loads((out / "build_report.json").read_text())
    assert report["fingerprint"] == result.fingerprint


def test_exact_duplicates_across_sources_keep_the_seed_copy(settings, mini_seed, fixture_datasets):
    with (mini_seed / "mini.jsonl").open("a") as fh:
        fh.write(
            json.dumps(
                {
                    "id": "en-dup-pizza",
                    "text": "Just had the BEST pizza of my life!!",
                    "label": "none",
                    "lang": "en",
                    "surface": "post",
                    "tags": ["slang"],
                }
            )
            + "\n"
        )
    result = build(settings)
    texts = [
        (s, src)
        for s in SPLITS
        for t, src in zip(result.dataset[s]["text"], result.dataset[s]["source"], strict=True)
        if "pizza" in t.lower()
    ]
    assert [src for _, src in texts] == ["seed"]
    assert result.removed["exact duplicate of a seed record"] == 1


def test_a_build_knows_when_its_inputs_change(settings, mini_seed):
    from data.build import inputs_fingerprint, is_current

    out = settings.data_dir
    assert not is_current(out)
    build_and_save(settings)
    assert is_current(out)
    before = inputs_fingerprint(settings)
    assert inputs_fingerprint(settings.model_copy(update={"split_seed": 99})) != before
    late = {
        "id": "late",
        "text": "a row added after the build",
        "label": "none",
        "lang": "en",
        "surface": "post",
        "tags": ["slang"],
    }
    with (mini_seed / "mini.jsonl").open("a") as fh:
        fh.write(json.dumps(late) + "\n")
    assert inputs_fingerprint(settings) != before
    assert not is_current(out)


def test_a_rebuild_leaves_splits_that_are_already_loaded_intact(settings, mini_seed):
    """A training run memory-maps the splits it loaded; a rebuild in the same folder (new seed rows) must not
    change what that run reads, and leaves no staging folders behind."""
    build_and_save(settings)
    loaded = load_from_disk(str(settings.data_dir))
    before = {s: loaded[s].to_list() for s in SPLITS}
    rows = [json.loads(line) for line in (mini_seed / "mini.jsonl").read_text().splitlines()]
    extra = [{**r, "id": r["id"] + "-new", "text": r["text"][::-1]} for r in rows[:40]]
    (mini_seed / "more.jsonl").write_text("".join(json.dumps(r) + "\n" for r in extra))
    build_and_save(settings)
    assert {s: loaded[s].to_list() for s in SPLITS} == before
    rebuilt = load_from_disk(str(settings.data_dir))
    assert sum(len(rebuilt[s]) for s in SPLITS) > sum(len(before[s]) for s in SPLITS)
    assert sorted(p.name for p in settings.data_dir.parent.iterdir() if p.name.startswith(".")) == []
