"""The record every source is turned into, and its Arrow schema.

A record carries a fine `label` when one is known, and always a `label_set`: the labels the source allows
(a single fine label is a set of one). Coarse public labels (a subreddit, a binary flag) become sets, so
coarse and fine data share one head through the partial-label loss without inventing fine labels.
"""

from __future__ import annotations

from typing import Literal

from datasets import Features, Sequence, Value
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from data.taxonomy import canonical_label_set

LANGS: tuple[str, ...] = ("en", "hi", "hi-Latn", "other")
SURFACES: tuple[str, ...] = ("post", "comment", "search", "chat", "bio", "caption")
"""caption = the text of a video's captions or its speech transcript."""
SPLITS: tuple[str, ...] = ("train", "validation", "test")

HARD_CASE_TAGS: tuple[str, ...] = (
    "figurative",
    "news",
    "statistics",
    "grief",
    "recovery",
    "negation",
    "lyrics_quote",
    "joke_game",
    "third_person",
    "past",
    "method_self",
    "method_general",
    "bullying",
    "help_seeking",
    "goodbye_no_keyword",
)
TOPIC_TAGS: tuple[str, ...] = (
    "awareness",
    "helpline",
    "support_given",
    "fiction",
    "academic",
    "everyday_stress",
    "plan",
    "means_at_hand",
    "act_in_progress",
    "goodbye",
    "glorification",
    "instructions",
    "self_harm",
    "suicide",
    "urge",
    "death_wish",
    "hopelessness",
    "burden",
    "question",
    "sarcasm",
    "religion",
    "exam",
    "family",
    "relationship",
    "work",
    "money",
    "lgbtq",
    "health",
    "farmer",
)
STYLE_TAGS: tuple[str, ...] = (
    "slang",
    "typo",
    "emoji",
    "obfuscated",
    "code_mixed",
    "dialect_rajasthani",
    "dialect_bhojpuri",
    "dialect_haryanvi",
)
TAGS: frozenset[str] = frozenset(HARD_CASE_TAGS + TOPIC_TAGS + STYLE_TAGS)
"""The controlled tag vocabulary (see data/GUIDELINE.md). Loaders of public data may add `source:*` tags."""

Lang = Literal["en", "hi", "hi-Latn", "other"]
Surface = Literal["post", "comment", "search", "chat", "bio", "caption"]
Split = Literal["train", "validation", "test"]


class Record(BaseModel):
    """One labelled text from any source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    text: str = Field(min_length=1, description="original text, kept for display and explanation offsets")
    label: str | None = Field(None, description="the fine label, when known")
    label_set: list[str] = Field(default_factory=list, description="labels the source allows")
    lang: Lang
    source: str = Field(min_length=1)
    surface: Surface = "post"
    tags: list[str] = Field(default_factory=list)
    group: str = Field("", description="records sharing a group always land in one split")
    split: Split | None = Field(None, description="preassigned split, e.g. train-only sources")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        return text

    @field_validator("tags")
    @classmethod
    def _known_tags(cls, tags: list[str]) -> list[str]:
        unknown = [t for t in tags if t not in TAGS and not t.startswith("source:")]
        if unknown:
            raise ValueError(f"unknown tags {unknown}; see data/GUIDELINE.md for the vocabulary")
        return sorted(set(tags))

    @model_validator(mode="after")
    def _labels_agree(self) -> Record:
        if self.label is None and not self.label_set:
            raise ValueError("a record needs a label or a label set")
        labels = canonical_label_set(self.label_set or [self.label])
        if self.label is not None:
            canonical_label_set([self.label])
            if labels != [self.label]:
                raise ValueError(f"label {self.label!r} disagrees with label_set {labels}")
        elif len(labels) == 1:
            object.__setattr__(self, "label", labels[0])
        object.__setattr__(self, "label_set", labels)
        if not self.group:
            object.__setattr__(self, "group", self.id)
        return self


FEATURES = Features(
    {
        "id": Value("string"),
        "text": Value("string"),
        "text_norm": Value("string"),
        "label": Value("string"),
        "label_set": Sequence(Value("string")),
        "lang": Value("string"),
        "source": Value("string"),
        "surface": Value("string"),
        "tags": Sequence(Value("string")),
        "group": Value("string"),
        "split": Value("string"),
    }
)
"""Columns of the built DatasetDict; `text_norm` is the model input made by data.normalize."""


def label_key(label_set: list[str]) -> str:
    """A short printable name for a label set: the label itself, or {a,b} for a set."""
    return label_set[0] if len(label_set) == 1 else "{" + ",".join(label_set) + "}"
