import pytest
from pydantic import ValidationError

from data.schema import Record, label_key


def make(**kw):
    base = {"id": "r1", "text": "some text here", "lang": "en", "source": "test"}
    return Record(**{**base, **kw})


def test_single_label_becomes_a_set_of_one_and_group_defaults_to_id():
    rec = make(label="ideation")
    assert rec.label_set == ["ideation"]
    assert rec.group == "r1"


def test_label_set_of_one_sets_the_fine_label():
    assert make(label_set=["none"]).label == "none"


def test_label_set_is_kept_without_inventing_a_fine_label():
    rec = make(label_set=["ideation", "intent"])
    assert rec.label is None
    assert rec.label_set == ["intent", "ideation"]
    assert label_key(rec.label_set) == "{intent,ideation}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"label": "suicidal"}, "unknown label"),
        ({}, "needs a label or a label set"),
        ({"label": "none", "label_set": ["ideation"]}, "disagrees"),
        ({"label": "none", "text": "   "}, "text is empty"),
        ({"label": "none", "surface": "tweet"}, "surface"),
        ({"label": "none", "lang": "fr"}, "lang"),
        ({"label": "none", "tags": ["made_up"]}, "unknown tags"),
        ({"label": "none", "ip": "1.2.3.4"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_records_say_what_is_wrong(fields, message):
    with pytest.raises(ValidationError, match=message):
        make(**fields)
