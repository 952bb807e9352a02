"""Made-up, benign sentences for tests that need a tiny fitted model (labels given to them are arbitrary)."""

from pathlib import Path

SENTENCES = [
    "the bus was late again this morning",
    "we planted tomatoes in the garden",
    "my cat sleeps on the keyboard",
    "the library opens at nine",
    "kal cricket match dekhne chalenge",
    "chai bahut achhi bani hai aaj",
    "the recipe needs two cups of flour",
    "our team won the quiz night",
    "please bring an umbrella tomorrow",
    "the train to pune was crowded",
    "she painted the door bright blue",
    "exam results come out on friday",
    "he fixed the bicycle chain himself",
    "the new phone has a better camera",
    "we watched the sunset from the roof",
    "mummy ne aaj paratha banaya",
    "the meeting moved to thursday",
    "they adopted a puppy last week",
    "the shop sells fresh mangoes",
    "traffic on the highway was slow",
]


def neutral_tfidf_artifact(directory: Path) -> Path:
    """A tiny TF-IDF artifact fitted on SENTENCES with round-robin labels: fast, and never says anything real."""
    from data.taxonomy import LABELS
    from model.classifier import RiskClassifier

    labels = [LABELS[i % len(LABELS)] for i in range(len(SENTENCES))]
    clf = RiskClassifier.baseline(min_df=1, max_iter=50).fit(SENTENCES, labels, eval_set=(SENTENCES, labels))
    return clf.save(directory)
