"""Each rule of the sentence splitter, on the mistake it prevents."""

import pytest

from textmill.components.sentence_pairs.sentence_splitter import (
    split_sentences,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        # Plain terminal punctuation, runs of it, end of text.
        (
            "It rained. Did it? Yes! Really?! Fine",
            ["It rained.", "Did it?", "Yes!", "Really?!", "Fine"],
        ),
        # Rule 1: paragraph breaks, even without punctuation.
        (
            "A heading\n\nThe text starts here. It goes on.",
            ["A heading", "The text starts here.", "It goes on."],
        ),
        # Rule 2: a line break inside a paragraph is a space...
        (
            "The first line is\nhard wrapped here. Next one.",
            ["The first line is hard wrapped here.", "Next one."],
        ),
        # ... except before a list item.
        (
            "Steps:\n1. Open the box.\n2. Take it out.\n- a bullet\n* another",
            [
                "Steps:",
                "1. Open the box.",
                "2. Take it out.",
                "- a bullet",
                "* another",
            ],
        ),
        # Rule 3: decimals, versions, URLs, inner dots.
        (
            "Pi is 3.14 roughly. We ship v1.2.3 today. See example.com/a.html "
            "now. It costs $4.50. That is cheap.",
            [
                "Pi is 3.14 roughly.",
                "We ship v1.2.3 today.",
                "See example.com/a.html now.",
                "It costs $4.50.",
                "That is cheap.",
            ],
        ),
        # Rule 4: closing quotes and brackets stay with their sentence.
        (
            'He said "Stop." Then he left. (See below.) Next one.',
            ['He said "Stop."', "Then he left.", "(See below.)", "Next one."],
        ),
        (
            "She asked “Why?” The answer came later.",
            ["She asked “Why?”", "The answer came later."],
        ),
        # Rule 5: no sentence starts lowercase.
        (
            '"Why?" he asked. It is approx. five miles.',
            ['"Why?" he asked.', "It is approx. five miles."],
        ),
        # Rule 6: titles and Latin abbreviations.
        (
            "Mr. Smith met Dr. Jones. They agreed, i.e. No changes. "
            "It is red, e.g. Apple red.",
            [
                "Mr. Smith met Dr. Jones.",
                "They agreed, i.e. No changes.",
                "It is red, e.g. Apple red.",
            ],
        ),
        (
            "The results show it. Prof. Brown agreed.",
            ["The results show it.", "Prof. Brown agreed."],
        ),
        # Rule 7: reference abbreviations before numbers only.
        (
            "See Fig. 3 and No. 5 here. The answer was no. Then we left.",
            [
                "See Fig. 3 and No. 5 here.",
                "The answer was no.",
                "Then we left.",
            ],
        ),
        # Rule 8: initials, acronyms and etc. end a sentence only before a
        # common sentence opener.
        (
            "J. K. Rowling wrote it. John F. Kennedy read it. It was plan B. "
            "The end.",
            [
                "J. K. Rowling wrote it.",
                "John F. Kennedy read it.",
                "It was plan B.",
                "The end.",
            ],
        ),
        (
            "See the U.S. Army report. I lived in the U.S. The weather was "
            "fine. She has a Ph.D. She earned it at 5 p.m. Monday.",
            [
                "See the U.S. Army report.",
                "I lived in the U.S.",
                "The weather was fine.",
                "She has a Ph.D.",
                "She earned it at 5 p.m. Monday.",
            ],
        ),
        (
            "Apples, pears, etc. The rest is history. Pears etc. and more.",
            [
                "Apples, pears, etc.",
                "The rest is history.",
                "Pears etc. and more.",
            ],
        ),
        # Rule 9: ellipses end a sentence only before a capital.
        (
            "I think... maybe not. Wait… Then it happened. Count to 3... 4.",
            [
                "I think... maybe not.",
                "Wait…",
                "Then it happened.",
                "Count to 3... 4.",
            ],
        ),
        # Rule 10: enumerators at a sentence start are list markers.
        (
            "1. First thing. IV. Results were good. Done.",
            ["1. First thing.", "IV. Results were good.", "Done."],
        ),
        # Numbers at the end of a sentence still end it.
        (
            "She was born in 1990. In 2000 she moved.",
            ["She was born in 1990.", "In 2000 she moved."],
        ),
    ],
)
def test_rules(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "\n\n \n"])
def test_blank_text_has_no_sentence(text):
    assert split_sentences(text) == []


def test_whitespace_is_collapsed_and_sentences_stripped():
    assert split_sentences("  One\tsentence  here.   Two  \n here.  ") == [
        "One sentence here.",
        "Two here.",
    ]
