"""The robustness report on a fake keyword model: flips where a perturbation breaks the keyword, none where the
model ignores the change, and no metric drop when nothing flips. Texts are made-up and neutral."""

import numpy as np
import pytest

from data.taxonomy import LABEL_INDEX, LABELS
from eval.robustness import robustness_report

TEXTS = [
    "news report about suicide prevention week",
    "the library hosts a talk on suicide prevention",
    "the bus was late again this morning",
    "we planted tomatoes in the garden",
    "kal cricket match dekhne chalenge",
    "कल हम बाज़ार जाएंगे",
]
LABEL_SETS = [["informational"], ["informational"], ["none"], ["none"], ["none"], ["none"]]
LANGS = ["en", "en", "en", "en", "hi-Latn", "hi"]
THRESHOLDS = {"at_risk": 0.5}


def keyword_proba(texts: list[str]) -> np.ndarray:
    """'informational' when the text contains the keyword (any case), else 'none'; at_risk mass stays low."""
    probs = np.full((len(texts), len(LABELS)), 0.02)
    for i, text in enumerate(texts):
        probs[i, LABEL_INDEX["informational" if "suicide" in text.lower() else "none"]] = 0.92
    return probs


def keyword_at_risk(texts: list[str]) -> np.ndarray:
    return np.array([0.9 if "suicide" in t.lower() else 0.1 for t in texts])


def report(**kwargs):
    return robustness_report(keyword_proba, TEXTS, LABEL_SETS, LANGS, THRESHOLDS, **kwargs)


def test_ignored_perturbation_flips_nothing_and_drops_nothing():
    entry = report(perturbations=["casing"])["perturbations"]["casing"]["overall"]
    assert entry["changed"] == pytest.approx(5 / 6)  # Devanagari has no case
    assert entry["top_label_flip_rate"] == 0 and entry["at_risk_flip_rate"] == 0
    assert entry["macro_f1"]["drop"] == 0 and entry["at_risk_f1"]["drop"] == 0


def test_keyword_breaking_perturbation_flips_and_drops():
    result = report(perturbations=["algospeak"])["perturbations"]["algospeak"]
    overall = result["overall"]
    assert overall["n"] == 6 and overall["changed"] == pytest.approx(2 / 6)
    assert overall["top_label_flip_rate"] == pytest.approx(2 / 6)
    assert overall["top_label_flip_rate_changed"] == 1
    assert overall["macro_f1"]["drop"] > 0 and overall["at_risk_f1"]["drop"] == 0  # no at_risk flips
    assert result["en"]["top_label_flip_rate"] == 0.5 and result["hi"]["top_label_flip_rate"] == 0


def test_language_specific_perturbations_report_only_their_rows():
    result = report(perturbations=["translit_to_latin", "translit_to_devanagari"])["perturbations"]
    assert set(result["translit_to_latin"]) == {"overall", "hi"} and result["translit_to_latin"]["overall"]["n"] == 1
    assert set(result["translit_to_devanagari"]) == {"overall", "hi-Latn"}


def test_all_perturbations_run_and_are_seeded():
    first, second = report(seed=3), report(seed=3)
    assert first == second
    assert set(first["perturbations"]) >= {"leetspeak", "zero_width", "emoji", "spacing", "typos"}


def test_at_risk_only_mode():
    out = robustness_report(keyword_at_risk, TEXTS, LABEL_SETS, LANGS, THRESHOLDS, at_risk_only=True)
    algo = out["perturbations"]["algospeak"]["overall"]
    assert algo["at_risk_flip_rate"] == pytest.approx(2 / 6)
    assert "top_label_flip_rate" not in algo and "macro_f1" not in algo
    casing = out["perturbations"]["casing"]["overall"]
    assert casing["at_risk_flip_rate"] == 0 and casing["at_risk_f1"]["drop"] == 0


def test_unknown_perturbation_is_refused():
    with pytest.raises(ValueError, match="unknown perturbations"):
        report(perturbations=["rot13"])


def test_at_risk_only_matches_full_mode_figures():
    swap = list(range(len(LABELS)))
    swap[LABEL_INDEX["ideation"]], swap[LABEL_INDEX["informational"]] = (
        LABEL_INDEX["informational"],
        LABEL_INDEX["ideation"],
    )

    def risk_proba(texts):  # the keyword now puts its mass on "ideation"
        return keyword_proba(texts)[:, swap]

    def risk_scores(texts):
        return risk_proba(texts)[:, [LABEL_INDEX["ideation"], LABEL_INDEX["intent"]]].sum(axis=1)

    sets = [["ideation"], ["none"], ["none"], ["intent"], ["none"], ["none"]]
    args = (TEXTS, sets, LANGS, THRESHOLDS)
    full = robustness_report(risk_proba, *args, perturbations=["algospeak"])["perturbations"]["algospeak"]
    bare = robustness_report(risk_scores, *args, perturbations=["algospeak"], at_risk_only=True)["perturbations"]
    assert full["overall"]["at_risk_flip_rate"] == pytest.approx(2 / 6)
    assert full["overall"]["at_risk_f1"]["drop"] > 0
    for key in ("at_risk_flip_rate", "at_risk_f1"):
        assert full["overall"][key] == bare["algospeak"]["overall"][key]
