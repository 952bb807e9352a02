"""Tests for data.langid: script decides hi/other, vocabulary decides en vs
hi-Latn, with code-mixed and loanword cases on the right side."""

import pytest

from data.langid import detect_lang, detect_lang_batch


@pytest.mark.parametrize(
    "text",
    [
        "kya",
        "nhi yaar",
        "mujhe nhi pta",
        "mje ni pta kya kru",
        "main thak gaya hu",
        "mai bahot pareshan hu",
        "koi nai samjhta mujhe",
        "yaaaar nahiiii hota mujhse",
        "dil toot gaya yr",
        "Ek din sab theek ho jayega",
        "bhai exam ka pressure bahut hai, I can't handle it yaar",
        "Main bahut tired hu, can't do this anymore",
        "mujhe lagta hai I am a burden to everyone",
        "kal exam hai and I haven't studied at all",
        "I told mom ki mujhe help chahiye",
        "life me kuch sahi nahi chal raha",
    ],
)
def test_hinglish(text):
    assert detect_lang(text) == "hi-Latn"


@pytest.mark.parametrize(
    "text",
    [
        "had chai with my yaar",
        "I failed again yaar",
        "Thanks bhai, see you at the party",
        "Dinner at my ghar tonight",
        "Is this the main reason?",
        "hi",
        "me too",
        "so sad",
        "See ya tomorrow",
        "I can't do this anymore",
        "I miss my नानी so much, nothing feels right",
    ],
)
def test_english_including_loanwords_and_hindi_homographs(text):
    assert detect_lang(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "मैं बहुत थक गया हूँ",
        "मुझे बहुत stress है",
        "I am fine, बस थोड़ा थक गया हूँ और नींद नहीं आती",
    ],
)
def test_devanagari_dominant_is_hindi(text):
    assert detect_lang(text) == "hi"


def test_latin_dominant_with_devanagari_is_hinglish():
    assert detect_lang("bahut stress hai yaar, मुझे नींद नहीं आती") == "hi-Latn"


@pytest.mark.parametrize(
    "text",
    ["Привет, как дела", "你好", "مرحبا كيف حالك", "வணக்கம்", "", "   ", "😭😭😭", "123 456", "!!!", "https://t.co/xyz"],
)
def test_other_scripts_and_letterless_text(text):
    assert detect_lang(text) == "other"


def test_batch_matches_single_calls():
    texts = ["kya hua", "hello there", "नमस्ते", "😭"]
    assert detect_lang_batch(texts) == ["hi-Latn", "en", "hi", "other"]
    assert detect_lang_batch(iter(texts)) == [detect_lang(t) for t in texts]


# Romanised Hindi made of content words (nouns, verbs, adjectives) rather
# than grammar words: search queries, bios, short chat lines.
@pytest.mark.parametrize(
    "text",
    [
        "aloo pyaaz paratha recipe",
        "kisan karz maafi yojana",
        "sarkari naukri khabar",
        "doodh sabzi dukaan",
        "rickshaw wale bhaiya station chaloge",
        "alvida duniya",
        "bye duniya",
        "kal subah milenge",
        "ghabraiye nahi",
    ],
)
def test_hinglish_content_words(text):
    assert detect_lang(text) == "hi-Latn"


# Leetspeak and spaced-out letters are repaired before scoring, and one-letter
# chat shorthand ("h" for hai, "k", "n") is no Hindi evidence on its own.
@pytest.mark.parametrize(
    "text",
    [
        "s3lf h@rm again",
        "$uicide thoughts every night",
        "h4te my life",
        "s u i c i d e thoughts all week",
        "s h urges are bad tonight",
        "k bye",
        "n u?",
        "h",
    ],
)
def test_obfuscated_english_and_single_letters_are_english(text):
    assert detect_lang(text) == "en"


@pytest.mark.parametrize("text", ["kya kar rha h tu", "mujhe m4rna h"])
def test_shorthand_and_leet_inside_hinglish_stay_hinglish(text):
    assert detect_lang(text) == "hi-Latn"


# English sentences with a couple of Hindi words, a short Hindi clause in a
# longer English text, or a quoted Hindi line stay English.
@pytest.mark.parametrize(
    "text",
    [
        "my nani makes the best aloo paratha",
        "the sabzi wala near our building is so rude",
        "I love you jaan, see you tomorrow",
        "finished the project finally, now chai and sleep yaar",
        "The main problem is to find a bus",
        "sab theek hai. I just need some sleep and time alone, honestly.",
        "I have been feeling really low for weeks and nobody at work notices anything. "
        "mummy keeps asking what happened. bas thak gayi hoon.",
        "my dad keeps humming 'kabhi kabhi mere dil mein' while cooking dinner",
    ],
)
def test_english_with_a_few_hindi_words(text):
    assert detect_lang(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "exam mein fail ho gaya, ab ghar pe sab gussa hain. I don't know what to do",
        "papa ne bola 'you are useless' aur chale gaye",
    ],
)
def test_mostly_hindi_clauses_are_hinglish(text):
    assert detect_lang(text) == "hi-Latn"


def test_devanagari_dominant_mixed_text_is_hindi():
    assert detect_lang("ये सब बहुत ज़्यादा है, I can't") == "hi"


def test_hindi_word_lists_do_not_claim_plain_english():
    # Everyday English sentences made only of words that are also romanised
    # Hindi ("main", "to", "the", "is", "so", "do") must not become hi-Latn.
    texts = ["Is this the main reason?", "so do I", "I am in the bus", "to be or not to be"]
    assert detect_lang_batch(texts) == ["en"] * len(texts)
