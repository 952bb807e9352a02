import pytest

from data.taxonomy import LABELS, UnknownLabelError, canonical_label_set, derive_signals, resolve, signal_truth


def test_precedence_order_matches_design():
    assert LABELS == ("intent", "promotion", "ideation", "informational", "none")


@pytest.mark.parametrize(
    ("applicable", "winner"),
    [
        (["ideation", "intent"], "intent"),
        (["none", "promotion", "ideation"], "promotion"),
        (["informational", "ideation"], "ideation"),
        (["none", "informational"], "informational"),
        (["none"], "none"),
    ],
)
def test_first_match_wins(applicable, winner):
    assert resolve(applicable) == winner


def test_unknown_label_is_refused_with_the_allowed_values():
    with pytest.raises(UnknownLabelError, match="expected one of intent, promotion"):
        resolve(["suicidal"])
    with pytest.raises(UnknownLabelError):
        canonical_label_set([])


def test_label_sets_are_canonical():
    assert canonical_label_set(["intent", "ideation", "intent"]) == ["intent", "ideation"]


def test_derived_signals_from_mapping_and_vector():
    probs = {"intent": 0.1, "promotion": 0.05, "ideation": 0.5, "informational": 0.2, "none": 0.15}
    signals = derive_signals(probs)
    assert signals == pytest.approx({"at_risk": 0.6, "urgent": 0.1, "violating": 0.05})
    assert derive_signals([0.1, 0.05, 0.5, 0.2, 0.15]) == pytest.approx(signals)
    with pytest.raises(ValueError, match="expected 5"):
        derive_signals([0.5, 0.5])


def test_signal_truth_leaves_undecided_sets_out():
    assert signal_truth(["ideation", "intent"], "at_risk") is True
    assert signal_truth(["none", "informational"], "at_risk") is False
    assert signal_truth(["none", "informational", "ideation"], "at_risk") is None
    assert signal_truth(["ideation", "intent"], "urgent") is None
    assert signal_truth(["promotion"], "violating") is True
