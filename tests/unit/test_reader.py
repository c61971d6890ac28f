"""The reader picks the answering sentence, the page it leads to, and nothing unconnected."""

from __future__ import annotations

from app.answer.reader import compared_sides, read, subject_names
from app.answer.sources import Source
from retrieval.types import Document, Passage


def _src(number: int, title: str, url: str, text: str) -> Source:
    return Source(
        number=number,
        document=Document(url=url, title=title, text=text),
        passages=(Passage(doc=number - 1, start=0, end=len(text), text=text, score=1.0),),
    )


KISS = _src(
    1,
    "Kiss and Tell (1945 film)",
    "http://wiki.test/wiki/Kiss_and_Tell_(1945_film)",
    "Kiss and Tell is a 1945 American comedy film starring then 17-year-old Shirley Temple as "
    "Corliss Archer. In the film, two teenage girls cause their parents much concern.",
)
TEMPLE = _src(
    2,
    "Shirley Temple",
    "http://wiki.test/wiki/Shirley_Temple",
    "Shirley Temple Black was an American actress, singer, dancer, businesswoman, and diplomat. "
    "As an adult, she was named United States ambassador to Ghana and to Czechoslovakia and "
    "also served as Chief of Protocol of the United States.",
)
# A page about the same character that shares the question's words, but that nothing read
# links to and that adds nothing the first sentence lacks.
RADIO = _src(
    3,
    "Meet Corliss Archer",
    "http://news.test/2019/02/meet-corliss-archer",
    "Meet Corliss Archer, a program from radio's Golden Age, ran from January 7, 1943 to "
    "September 30, 1956. Corliss Archer was also played on film and on television.",
)


def test_a_bridge_question_reads_the_page_the_first_sentence_names() -> None:
    question = (
        "What government position was held by the woman who portrayed Corliss Archer in the "
        "film Kiss and Tell?"
    )
    picks = read(question, [KISS, RADIO, TEMPLE])
    # Two pages; a further sentence, if any, comes from a page already cited.
    assert list(dict.fromkeys(p.source for p in picks)) == [1, 2]
    assert picks[0].text.startswith("Kiss and Tell is a 1945")
    # Every pick is a verbatim slice of its document.
    docs = {s.number: s.document.text for s in (KISS, RADIO, TEMPLE)}
    assert all(docs[p.source][p.offset : p.offset + len(p.text)] == p.text for p in picks)


def test_an_unconnected_page_is_not_cited_however_many_words_it_shares() -> None:
    question = "Which film starred Shirley Temple as Corliss Archer?"
    picks = read(question, [KISS, RADIO])
    assert {p.source for p in picks} == {1}


def test_a_comparison_reads_each_compared_subject_s_own_page() -> None:
    morton = _src(
        1,
        "The long view: Annie Morton",
        "http://blog.test/posts/annie-morton",
        "Annie Morton (born October 8, 1970) is an American model. She has been photographed "
        "by Helmut Newton and Terry Richardson.",
    )
    richardson = _src(
        2,
        "Terry Richardson",
        "http://wiki.test/wiki/Terry_Richardson",
        "Terrence Richardson (born August 14, 1965) is an American fashion photographer.",
    )
    question = "Who is older, Annie Morton or Terry Richardson?"
    assert compared_sides(question) == ["Annie Morton", "Terry Richardson"]
    picks = read(question, [morton, richardson])
    assert {p.source for p in picks} == {1, 2}


def test_compared_sides_are_cut_to_the_names_beside_the_conjunction() -> None:
    assert compared_sides("What occupation do Chris Menges and Aram Avakian share?") == [
        "Chris Menges",
        "Aram Avakian",
    ]
    assert compared_sides("Which band, Letters to Cleo or Screaming Trees, had more members?") == [
        "Letters to Cleo",
        "Screaming Trees",
    ]
    assert compared_sides("Are both Superdrag and Collective Soul rock bands?") == [
        "Superdrag",
        "Collective Soul",
    ]
    # Numbers are not subjects, and a question with no conjunction compares nothing.
    assert compared_sides("In the range between 1980 and 1990, what did demand grow?") == []
    assert compared_sides("Who directed Ed Wood?") == []


def test_how_many_prefers_the_sentence_that_holds_a_number() -> None:
    vague = _src(
        1,
        "Lewiston arenas",
        "http://news.test/a",
        "The Androscoggin Bank Colisee seats lots of people.",
    )
    exact = _src(
        2,
        "Lewiston venues",
        "http://news.test/b",
        "The Androscoggin Bank Colisee seats 3,677 people.",
    )
    picks = read("How many people does the Androscoggin Bank Colisee seat?", [vague, exact])
    # Both sentences hold every word of the question; the one with a number answers it.
    assert picks[0].source == 2


def test_a_headline_and_slug_name_their_shared_subject() -> None:
    names = subject_names(
        "A closer look at Peter Fleming", "http://news.test/2017/07/peter-fleming-tennis"
    )
    assert ("peter", "flem") in names


def test_nothing_to_read_is_no_pick() -> None:
    assert read("Who?", [KISS]) == []
    assert read("What government position?", []) == []


def test_only_a_title_s_first_words_are_compared_with_its_slug() -> None:
    # The words the title and slug share lie beyond the words compared: no shared name.
    padding = " ".join(f"filler{i}" for i in range(40))
    names = subject_names(f"{padding} Peter Fleming", "http://news.test/peter-fleming-tennis")
    assert ("peter", "flem") not in names
