"""Made-up marker words, one per label: tiny models learn them, so tests know the right answer for a text."""

MARKERS = {
    "intent": "zorblat",
    "promotion": "quaxil",
    "ideation": "mervin",
    "informational": "tindor",
    "none": "palvek",
}
