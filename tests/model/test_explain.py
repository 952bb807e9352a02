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
