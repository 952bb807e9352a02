import numpy as np

from model.explain import occlusion_spans


def fake_score(trigger: str):
    """Score 0.9 when the trigger word is present, else 0.1."""

    def score(variants, signals):
        return np.array([0.9 if trigger in v else 0.1 for v in variants])

    return score


def test_spans_point_at_the_driving_word_in_the_original_text():
    texts = ["so  tired,   everything feels heavy 😞", "आज बहुत भारी लग रहा है"]
    triggers = ["heavy", "भारी"]
    for text, trigger in zip(texts, triggers, strict=True):
        [spans] = occlusion_spans([text], ["at_risk"], np.array([0.9]), fake_score(trigger))
        assert [text[s.start : s.end] for s in spans] == [trigger]
        assert spans[0].text == trigger and spans[0].weight > 0.5


def test_no_spans_when_nothing_moves_the_score_and_single_words():
    [spans] = occlusion_spans(["nothing here at all"], ["at_risk"], np.array([0.1]), fake_score("zzz"))
    assert spans == []
    [single] = occlusion_spans(["hello"], ["at_risk"], np.array([0.7]), fake_score("zzz"))
    assert [(s.start, s.end) for s in single] == [(0, 5)]


def test_a_risk_stated_late_in_a_long_text_is_found_within_a_bounded_number_of_scores():
    """More than MAX_WORDS words: runs of words first, then the words of the runs that mattered."""
    from model.explain import MAX_WORDS

    words = [f"w{k}" for k in range(400)]
    words[333] = "heavy"
    text = " ".join(words)
    calls = []

    def score(variants, signals):
        calls.append(len(variants))
        return fake_score("heavy")(variants, signals)

    [spans] = occlusion_spans([text], ["at_risk"], np.array([0.9]), score)
    assert [text[s.start : s.end] for s in spans] == ["heavy"]
    assert len(calls) == 2 and calls[0] <= MAX_WORDS and calls[1] <= 5 * (400 // MAX_WORDS + 1)


def test_short_and_long_texts_are_explained_together():
    long = " ".join(["calm"] * 150 + ["heavy"] + ["calm"] * 10)
    texts = ["so tired and heavy today", long, "heavy"]
    spans = occlusion_spans(texts, ["at_risk"] * 3, np.array([0.9, 0.9, 0.9]), fake_score("heavy"))
    assert [[t[s.start : s.end] for s in sp] for t, sp in zip(texts, spans, strict=True)] == [["heavy"]] * 3
