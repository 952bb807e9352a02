"""What `sahay train` feeds the model: romanised copies of Devanagari rows, weights on hard negatives."""

import numpy as np
from datasets import Dataset

from model.config import TrainConfig
from model.train import sample_weights, training_rows, with_transliterations


def _rows():
    return Dataset.from_dict(
        {
            "id": ["a", "b", "c", "d"],
            "text": ["मैं ठीक हूँ", "all good", "sab theek", "कल मिलते हैं"],
            "lang": ["hi", "en", "hi-Latn", "hi"],
            "source": ["seed", "seed", "seed", "sdcnl"],
            "label_set": [["none"], ["informational"], ["ideation", "intent"], ["none"]],
            "tags": [["figurative"], ["news"], ["negation"], []],
        }
    )


def test_devanagari_rows_get_a_romanised_copy():
    out = with_transliterations(_rows())
    assert len(out) == 6
    copies = out.select(range(4, 6))
    assert copies["id"] == ["a~latn", "d~latn"]
    assert copies["lang"] == ["hi-Latn", "hi-Latn"]
    assert copies["source"] == ["seed+translit", "sdcnl+translit"]
    assert copies["label_set"] == [["none"], ["none"]] and copies["tags"] == [["figurative"], []]
    assert all(t.isascii() for t in copies["text"])


def test_augmentation_is_off_unless_configured():
    assert len(training_rows(_rows(), TrainConfig(max_public_rows=None))) == 4
    on = TrainConfig.model_validate({"max_public_rows": None, "augment": {"transliterate": True}})
    assert len(training_rows(_rows(), on)) == 6


def test_hard_negatives_that_are_not_at_risk_get_the_weight():
    assert sample_weights(_rows(), 1.0) is None
    # figurative none and news informational are hard negatives; the negation row is at risk; d has no tag
    assert np.array_equal(sample_weights(_rows(), 3.0), [3.0, 3.0, 1.0, 1.0])


def test_public_holdout_is_group_aware_stable_and_never_trained_on():
    from model.train import split_public_holdout

    n = 400
    rows = Dataset.from_dict(
        {
            "id": [str(i) for i in range(n)],
            "source": ["seed" if (i // 2) % 4 == 0 else "sdcnl" for i in range(n)],
            "group": [f"g{i // 2}" for i in range(n)],  # pairs of near-duplicates
        }
    )
    train, held = split_public_holdout(rows, 0.2)
    again_train, again_held = split_public_holdout(rows, 0.2)
    assert held["id"] == again_held["id"] and train["id"] == again_train["id"]
    assert 20 < len(held) < 110 and set(held["source"]) == {"sdcnl"}
    assert set(held["group"]).isdisjoint(train["group"])
    assert set(held["id"]).isdisjoint(train["id"]) and len(train) + len(held) == n
    capped_train, capped = split_public_holdout(rows, 0.2, max_rows=10)
    assert len(capped) == 10 and len(capped_train) == len(train)
    assert len(split_public_holdout(rows, 0.0)[1]) == 0


def test_unlabelled_rows_are_unused_public_texts_with_every_label_allowed():
    from data.taxonomy import LABELS
    from model.train import unlabelled_rows

    pool = _rows().add_column("label", [None] * 4)
    used = pool.select([0, 1])  # "a", "b" are training rows already; "d" is the only unused public row
    extra = unlabelled_rows(pool, used, 5, seed=1)
    assert extra["id"] == ["d"] and extra["label_set"] == [list(LABELS)]
    assert len(unlabelled_rows(pool, used, 0, seed=1)) == 0


def test_rows_that_allow_every_label_do_not_change_the_baseline(tiny_corpus):
    from data.taxonomy import LABELS
    from model.backends.tfidf import TfidfBackend, TfidfConfig
    from model.labels import label_masks

    (texts, labels), _ = tiny_corpus
    masks = label_masks([[x] for x in labels])
    plain = TfidfBackend(TfidfConfig(min_df=1))
    plain.fit(texts, masks)
    padded = TfidfBackend(TfidfConfig(min_df=1))
    noise = ["zorblat quaxil mervin", "tindor palvek alpha"]
    padded.fit(texts + noise, np.vstack([masks, label_masks([list(LABELS)] * 2)]))
    assert np.allclose(plain.logits(texts[:10]), padded.logits(texts[:10]))


def test_student_takes_its_own_epochs_and_patience_and_the_teacher_keeps_the_e5_ones():
    from model.config import load_config
    from model.train import student_config

    default = load_config()
    teacher = (default.e5.epochs, default.e5.patience)
    own = (default.distill.epochs, default.distill.patience)
    assert teacher == (3, 0) and own == (5, 1)  # model/configs/default.yaml: different, so the test can tell
    student = student_config(default)
    assert (student.e5.epochs, student.e5.patience) == own
    assert student.e5.num_layers == default.distill.student_layers
    assert (default.e5.epochs, default.e5.patience) == teacher, "the teacher's settings must not change"
    unset = TrainConfig.model_validate({"e5": {"epochs": 3, "patience": 2}, "distill": {"enabled": True}})
    assert (student_config(unset).e5.epochs, student_config(unset).e5.patience) == (3, 2)


def test_obfuscation_respells_a_seeded_share_of_latin_rows_only():
    from model.train import with_obfuscations

    n = 200
    rows = Dataset.from_dict(
        {
            "id": [str(i) for i in range(n)],
            "text": ["feeling so tired of everything lately" if i % 2 else "सब ठीक है आज" for i in range(n)],
            "lang": ["en" if i % 2 else "hi" for i in range(n)],
            "label_set": [["none"]] * n,
        }
    )
    out = with_obfuscations(rows, 0.3, seed=5)
    changed = [i for i in range(n) if out["text"][i] != rows["text"][i]]
    assert all(rows["lang"][i] == "en" for i in changed), "Devanagari rows are never respelt"
    assert 15 <= len(changed) <= 45  # about 30% of the 100 English rows
    assert out["id"] == rows["id"] and out["label_set"] == rows["label_set"] and out.features == rows.features
    assert with_obfuscations(rows, 0.3, seed=5)["text"] == out["text"], "seeded"
    assert with_obfuscations(rows, 0.0, seed=5)["text"] == rows["text"]


def test_obfuscation_is_off_unless_configured():
    on = TrainConfig.model_validate({"max_public_rows": None, "augment": {"obfuscate": 1.0}})
    assert training_rows(_rows(), TrainConfig(max_public_rows=None))["text"] == _rows()["text"]
    respelt = training_rows(_rows(), on)["text"]
    assert respelt[0] == _rows()["text"][0] and respelt[3] == _rows()["text"][3]  # Devanagari stays
    assert respelt[1:3] != _rows()["text"][1:3]
