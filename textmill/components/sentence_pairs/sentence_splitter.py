"""A rule-based English sentence splitter (no model, no downloaded data).

`split_sentences(text)` cuts a document into sentences. A sentence ends at
terminal punctuation (`.`, `!`, `?`, `…` or a run of them, such as `?!` or
`...`) followed by whitespace, unless one of the rules below says the
punctuation does not end a sentence. Each rule fixes a mistake that the
plain "punctuation + space" rule makes on ordinary English text:

1. Paragraph breaks (a blank line) always end a sentence: headings,
   captions and list items without final punctuation must not run into the
   next paragraph.
2. A single line break is a space (hard-wrapped prose continues on the next
   line), except before a list item (`- `, `* `, `• `, `1. `, `a) `), which
   starts a new sentence.
3. A period needs whitespace (or the end of the text) after it to end a
   sentence, so decimals, version numbers, URLs and the inner dots of
   `e.g.` or `U.S.` never do (`3.14`, `v1.2.3`, `example.com/a.html`).
4. Closing quotes and brackets after the punctuation belong to the sentence
   that ends: `He said "Stop." Then` splits after the closing quote.
5. A sentence never starts with a lowercase letter, so `"Why?" he asked`,
   `approx. five` and abbreviations missing from the lists below stay whole.
6. Titles and Latin abbreviations that are (almost) never sentence-final
   (`Mr.`, `Dr.`, `Prof.`, `St.`, `e.g.`, `i.e.`, `cf.`, `vs.`, ...) never
   end a sentence.
7. Reference abbreviations (`No.`, `Vol.`, `Fig.`, `p.`, `pp.`, ...) do not
   end a sentence when a number follows: `see Fig. 3 and No. 5`.
8. Ambiguous abbreviations end a sentence only when the next word is a
   common sentence opener (`The`, `He`, `It`, `But`, ...). They are the
   single initials (`J. K. Rowling` stays whole, `plan B. The` splits),
   dotted acronyms (`U.S.`, `a.m.`, `Ph.D.`) and `etc.`, `Inc.`, `Ltd.`,
   `Co.`, `Corp.`, `al.`; each is sentence-final often enough that rule 6
   would be wrong, and followed by a proper noun often enough (`U.S.
   Army`, `John F. Kennedy`) that the plain rule would be wrong too.
9. An ellipsis (`...`, `…`) ends a sentence only before a capitalised word
   (`I think... maybe` stays whole).
10. An enumerator at the start of a line or sentence (`1.`, `IV.`, `a.`)
    is a list marker, not a sentence.

Known limits: a sentence opening with a lowercase word (`iPhone sales
rose.`) joins the previous one; `"Stop!" John shouted.` splits after the
quote; abbreviations outside the lists end a sentence before a capital.
"""

from __future__ import annotations

import re

# Rule 6: never sentence-final (compared lowercased, without the final dot).
TITLE_ABBREVIATIONS = frozenset(
    """
    mr mrs ms mx dr prof st sr jr rev hon gov gen col lt sgt capt cmdr adm
    maj mt ft messrs mme mlle sen rep pres supt insp
    e.g i.e cf viz vs v approx ca esp incl dept univ assn bros
    jan feb mar apr aug sept sep oct nov dec
    """.split()
)
# Rule 7: abbreviations only when a number follows.
NUMBER_ABBREVIATIONS = frozenset(
    "no nos vol vols p pp fig figs eq eqs ch sec art ref refs para".split()
)
# Rule 8: words after an ambiguous abbreviation that start a new sentence.
AMBIGUOUS_ABBREVIATIONS = frozenset("etc inc ltd co corp al llc plc".split())
SENTENCE_OPENERS = frozenset(
    """
    a an the this that these those there then thus so but and or yet however
    i he she it we you they his her its our their my your
    in on at as if when while after before since although though because
    what who which where why how
    is are was were do does did has have had will would can could should
    some many most all no not one two each every another such both
    also still even now today yesterday meanwhile later finally first
    """.split()
)

_TERMINAL = ".!?…"
_CLOSERS = "\"'”’»)]}"
_OPENERS = "\"'“‘«([{"
# Terminal punctuation, optional closers, then whitespace or the end.
_CANDIDATE = re.compile(
    rf"[{re.escape(_TERMINAL)}]+[{re.escape(_CLOSERS)}]*(?=\s|$)"
)
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_LIST_ITEM = re.compile(r"(?:[-*•‣]|\d{1,3}[.)]|[a-z][.)])\s")
# A number, an uppercase Roman numeral or a lowercase letter.
_ENUMERATOR = re.compile(
    r"\d{1,3}|(?=[MDCLXVI])M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})"
    r"(?:IX|IV|V?I{0,3})|[a-z]"
)
_WORD = re.compile(r"[^\W\d_]+")
_DOTTED_ACRONYM = re.compile(r"(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}")
_INITIAL = re.compile(r"[^\W\d_]")


def split_sentences(text: str) -> list[str]:
    """Splits a document into sentences (see the module docstring's rules).

    Args:
        text: the document; any whitespace. Paragraphs are separated by a
            blank line.

    Returns:
        The sentences, stripped, with runs of whitespace (line breaks
        included) collapsed to one space; empty if `text` is blank.
    """
    sentences = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        for chunk in _list_items(paragraph):
            sentences.extend(_split_chunk(" ".join(chunk.split())))
    return sentences


def _list_items(paragraph: str) -> list[str]:
    """Rule 2: cuts a paragraph before each line that starts a list item."""
    items = [[]]
    for line in paragraph.split("\n"):
        if items[-1] and _LIST_ITEM.match(line.strip()):
            items.append([])
        items[-1].append(line)
    return ["\n".join(item) for item in items if "".join(item).strip()]


def _split_chunk(chunk: str) -> list[str]:
    """Splits whitespace-normalised text with rules 3-10."""
    sentences = []
    start = 0
    for match in _CANDIDATE.finditer(chunk):
        end = match.end()
        if end == len(chunk):
            break
        if _ends_sentence(chunk, start, match):
            sentences.append(chunk[start:end])
            start = end + 1  # the single space after the boundary
    if chunk[start:].strip():
        sentences.append(chunk[start:])
    return sentences


def _ends_sentence(chunk: str, start: int, match: re.Match) -> bool:
    """Whether the candidate `match` ends the sentence begun at `start`."""
    punctuation = match.group().rstrip(_CLOSERS)
    next_word = chunk[match.end() + 1 :].split(" ", 1)[0].lstrip(_OPENERS)
    first = next_word[:1]
    if not first or first.islower():  # rule 5
        return False
    if set(punctuation) <= set(".…") and (
        "…" in punctuation or len(punctuation) > 1
    ):  # rule 9
        return first.isupper()
    if punctuation != ".":
        return True
    # The word the period ends, without leading quotes or brackets.
    word_start = max(chunk.rfind(" ", start, match.start()) + 1, start)
    word = chunk[word_start : match.start()].lstrip(_OPENERS)
    if not word:
        return True
    if word_start == start and _ENUMERATOR.fullmatch(word):  # rule 10
        return False
    lowered = word.lower()
    if lowered in TITLE_ABBREVIATIONS:  # rule 6
        return False
    if lowered in NUMBER_ABBREVIATIONS and first.isdigit():  # rule 7
        return False
    if (
        lowered in AMBIGUOUS_ABBREVIATIONS
        or _DOTTED_ACRONYM.fullmatch(word)
        or (_INITIAL.fullmatch(word) and word.isupper())
    ):  # rule 8
        opener = _WORD.match(next_word)
        return bool(opener) and opener.group().lower() in SENTENCE_OPENERS
    return True
