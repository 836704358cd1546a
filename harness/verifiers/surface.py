"""Hand-written surface checks (what IFEval lacks), each exact and offline, most with an antithesis that is
its negation.

Words are whitespace-separated tokens holding a letter or digit; sentences are the pieces between runs of
``.``, ``!`` or ``?`` followed by whitespace or the end, counted when they hold a letter or digit.
"""

from __future__ import annotations

import re

from harness.verifiers.base import COUNT, POSITIVE, TEXT, Param, register

WORD = re.compile(r"\S*[^\W_]\S*")  # one match per token holding a letter or digit
ALNUM = re.compile(r"[^\W_]")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
FIRST_PERSON = re.compile(r"\b(?:i(?!\.e\.)|me|my|mine|myself|we|us|our|ours|ourselves)\b", re.IGNORECASE)
DIGIT = re.compile(r"\d")
BULLET = re.compile(r"^[ \t]*[-*+•][ \t]+\S", re.MULTILINE)
LETTERS = re.compile(r"[^\W\d_]+")
CLOSERS = "\"'”’»)]*"
STOPWORDS = frozenset("""
    about above after again against along among around because before being below between beyond cannot could
    doing during either every everyone everything further having however itself maybe might myself neither never
    nothing other others ought quite rather really shall should since someone something still their theirs
    themselves there these thing things think those though through under until where whether which while whose
    within without would yours yourself yourselves anyone anything going
""".split())
HARNESS = "harness"


def count_words(text: str) -> int:
    return len(WORD.findall(text))


def count_sentences(text: str) -> int:
    return sum(1 for piece in SENTENCE_END.split(text) if ALNUM.search(piece))


def content_words(text: str) -> set[str]:
    """Lowercased words of 5+ letters that are not stopwords."""
    return {word for word in map(str.lower, LETTERS.findall(text)) if len(word) >= 5 and word not in STOPWORDS}


def max_words(response: str, n: int) -> bool:
    return count_words(response) <= n


def min_words(response: str, n: int) -> bool:
    return count_words(response) >= n


def max_sentences(response: str, n: int) -> bool:
    return count_sentences(response) <= n


def min_sentences(response: str, n: int) -> bool:
    return count_sentences(response) >= n


def starts_with(response: str, phrase: str) -> bool:
    return response.strip().lower().startswith(phrase.strip().lower())


def not_starts_with(response: str, phrase: str) -> bool:
    return not starts_with(response, phrase)


def first_person(response: str) -> bool:
    return FIRST_PERSON.search(response) is not None


def no_first_person(response: str) -> bool:
    return not first_person(response)


def has_digits(response: str) -> bool:
    return DIGIT.search(response) is not None


def no_digits(response: str) -> bool:
    return not has_digits(response)


def ends_with_question(response: str) -> bool:
    return response.rstrip().rstrip(CLOSERS).endswith("?")


def not_ends_with_question(response: str) -> bool:
    return not ends_with_question(response)


def bullet_list(response: str, min_items: int) -> bool:
    return len(BULLET.findall(response)) >= min_items


def no_bullets(response: str) -> bool:
    return BULLET.search(response) is None


def has_uppercase(response: str) -> bool:
    return any(map(str.isupper, response))


def all_lowercase(response: str) -> bool:
    return not has_uppercase(response)


def has_lowercase(response: str) -> bool:
    return any(map(str.islower, response))


def all_uppercase(response: str) -> bool:
    return not has_lowercase(response)


def has_comma(response: str) -> bool:
    return "," in response


def mentions_query_keyword(response: str, query: str) -> bool:
    return not content_words(query).isdisjoint(map(str.lower, LETTERS.findall(response)))


def no_query_keyword(response: str, query: str) -> bool:
    return not mentions_query_keyword(response, query)


N, PHRASE = Param("n", COUNT), Param("phrase", TEXT)
register("max_words", max_words, HARNESS, "at most n words (whitespace tokens holding a letter or digit)", N)
register("min_words", min_words, HARNESS, "at least n words (whitespace tokens holding a letter or digit)", N)
register("max_sentences", max_sentences, HARNESS, "at most n sentences (split on [.!?]+ before whitespace/end)", N)
register("min_sentences", min_sentences, HARNESS, "at least n sentences (split on [.!?]+ before whitespace/end)", N)
register("starts_with", starts_with, HARNESS, "starts with phrase (case-insensitive, whitespace stripped)", PHRASE)
register("not_starts_with", not_starts_with, HARNESS, "antithesis of starts_with", PHRASE)
register("no_first_person", no_first_person, HARNESS,
         "no I/me/my/mine/myself/we/us/our/ours/ourselves as whole words (case-insensitive)")
register("first_person", first_person, HARNESS, "antithesis of no_first_person: some first-person pronoun")
register("no_digits", no_digits, HARNESS, "no digit anywhere")
register("has_digits", has_digits, HARNESS, "at least one digit")
register("ends_with_question", ends_with_question, HARNESS,
         "last character is '?' (ignoring trailing whitespace, quotes, brackets and '*')")
register("not_ends_with_question", not_ends_with_question, HARNESS, "antithesis of ends_with_question")
register("bullet_list", bullet_list, HARNESS, "at least min_items lines that start with a bullet (-, *, + or •) "
         "and a space", Param("min_items", POSITIVE))
register("no_bullets", no_bullets, HARNESS, "antithesis of bullet_list: no line starts with a bullet")
register("all_lowercase", all_lowercase, HARNESS, "no uppercase letter (any language, no language check)")
register("has_uppercase", has_uppercase, HARNESS, "at least one uppercase letter")
register("all_uppercase", all_uppercase, HARNESS, "no lowercase letter (any language, no language check)")
register("has_lowercase", has_lowercase, HARNESS, "at least one lowercase letter")
register("has_comma", has_comma, HARNESS, "antithesis of no_comma: at least one ','")
register("mentions_query_keyword", mentions_query_keyword, HARNESS,
         "shares a whole word of 5+ letters, not a stopword, with the query (case-insensitive)", needs_query=True)
register("no_query_keyword", no_query_keyword, HARNESS, "antithesis of mentions_query_keyword", needs_query=True)
