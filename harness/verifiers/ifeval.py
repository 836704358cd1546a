"""IFEval's instruction checkers (Zhou et al. 2023), as shipped in lm-eval, under simple parameter names.

lm-eval's checker module is loaded from its file, on first use, without running the ``lm_eval`` package
``__init__``s (they import its evaluator stack: requests, datasets, torch) and against an offline stand-in for
its ``instructions_util``, whose import downloads nltk's ``punkt_tab`` data. None of the wrapped checkers calls
that module; those that do (nltk punkt tokenizing) are left out and listed in ``OMITTED_IFEVAL``.

Keywords, words and section splitters are matched literally (lm-eval treats them as regexes). The two
``english_*`` checks also require langdetect to guess English (seeded here, so repeatable, but unreliable on
very short or all-caps text); ``all_lowercase`` and friends check case alone.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.core.errors import HarnessError
from harness.verifiers.base import COUNT, LETTER, TEXT, WORDS, Param, register

INSTALL = "pip install --no-deps lm-eval==0.4.13 && pip install langdetect==1.0.9"
PACKAGE = "lm_eval.tasks.ifeval"

OMITTED_IFEVAL = {
    "length_constraints:number_sentences": "counts sentences with nltk punkt, data downloaded at run time; "
                                           "use max_sentences / min_sentences (regex)",
    "change_case:capital_word_frequency": "tokenizes with nltk.word_tokenize, which needs punkt data downloaded "
                                          "at run time",
    "length_constraints:number_words": "use max_words / min_words, so the harness has one word-counting rule "
                                       "(IFEval counts \\w+ runs)",
    "language:response_language": "langdetect guesses are unreliable on short responses, and SmolLM2-135M "
                                  "writes English only",
    "length_constraints:nth_paragraph_first_word": "lm-eval replaces an inconsistent paragraph index by a random "
                                                   "one; not a summary/answer principle",
    "combination:repeat_prompt": "needs the verbatim request to echo; a harness query is a whole post",
}


def _ifeval_folder() -> Path:
    spec = importlib.util.find_spec("lm_eval")  # locates the package without importing it
    locations = spec.submodule_search_locations if spec else None
    folder = Path(next(iter(locations))) / "tasks" / "ifeval" if locations else None
    if folder is None or not (folder / "instructions.py").is_file():
        raise HarnessError(f"IFEval verifiers need lm-eval's IFEval checkers: {INSTALL}")
    return folder


@contextmanager
def _stand_in(name: str, module: types.ModuleType) -> Iterator[None]:
    """Let ``from <name> import ...`` find ``module`` (not the real package chain) for the duration."""
    saved = sys.modules.get(name)
    sys.modules[name] = module
    try:
        yield
    finally:
        if saved is None:
            del sys.modules[name]
        else:
            sys.modules[name] = saved


def _load(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"{__name__}._lm_eval_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def instruction_dict() -> dict[str, type]:
    """lm-eval's ``INSTRUCTION_DICT`` (IFEval instruction id -> checker class), loaded offline."""
    folder = _ifeval_folder()
    package = types.ModuleType(PACKAGE)
    package.instructions_util = types.SimpleNamespace(LANGUAGE_CODES={})  # read at import, used by language checks
    try:
        with _stand_in(PACKAGE, package):
            package.instructions = _load(folder / "instructions.py")
            registry = _load(folder / "instructions_registry.py")
    except ImportError as exc:
        raise HarnessError(f"IFEval verifiers need {INSTALL}: {exc}") from None
    import langdetect

    langdetect.DetectorFactory.seed = 0
    return registry.INSTRUCTION_DICT


def follows(instruction_id: str, response: str, **kwargs) -> bool:
    """Whether ``response`` follows IFEval's ``instruction_id`` built with ``kwargs`` (lm-eval's argument names)."""
    checker = instruction_dict()[instruction_id](instruction_id)
    checker.build_description(**kwargs)
    return bool(checker.check_following(response))


def _literal(text: str) -> str:
    return re.escape(text.strip())


def ends_with(response: str, phrase: str) -> bool:
    return follows("startend:end_checker", response, end_phrase=phrase)


def not_ends_with(response: str, phrase: str) -> bool:
    return not ends_with(response, phrase)


def quoted(response: str) -> bool:
    return follows("startend:quotation", response)


def not_quoted(response: str) -> bool:
    return not quoted(response)


def exact_bullets(response: str, n: int) -> bool:
    return follows("detectable_format:number_bullet_lists", response, num_bullets=n)


def has_keywords(response: str, keywords: list[str]) -> bool:
    return follows("keywords:existence", response, keywords=[_literal(k) for k in keywords])


def forbidden_words(response: str, words: list[str]) -> bool:
    return follows("keywords:forbidden_words", response, forbidden_words=[_literal(w) for w in words])


def uses_words(response: str, words: list[str]) -> bool:
    return not forbidden_words(response, words)


def keyword_at_least(response: str, keyword: str, n: int) -> bool:
    return follows("keywords:frequency", response, keyword=_literal(keyword), frequency=n, relation="at least")


def keyword_less_than(response: str, keyword: str, n: int) -> bool:
    return follows("keywords:frequency", response, keyword=_literal(keyword), frequency=n, relation="less than")


def letter_at_least(response: str, letter: str, n: int) -> bool:
    return follows("keywords:letter_frequency", response, letter=letter, let_frequency=n, let_relation="at least")


def letter_less_than(response: str, letter: str, n: int) -> bool:
    return follows("keywords:letter_frequency", response, letter=letter, let_frequency=n, let_relation="less than")


def exact_paragraphs(response: str, n: int) -> bool:
    return follows("length_constraints:number_paragraphs", response, num_paragraphs=n)


def min_placeholders(response: str, n: int) -> bool:
    return follows("detectable_content:number_placeholders", response, num_placeholders=n)


def postscript(response: str, marker: str) -> bool:
    """lm-eval special-cases the markers 'P.S.' and 'P.P.S' and reads any other one as a regex."""
    marker = marker.strip()
    pattern = marker if marker in ("P.S.", "P.P.S") else re.escape(marker)
    return follows("detectable_content:postscript", response, postscript_marker=pattern)


def constrained_response(response: str) -> bool:
    return follows("detectable_format:constrained_response", response)


def min_highlights(response: str, n: int) -> bool:
    return follows("detectable_format:number_highlighted_sections", response, num_highlights=n)


def min_sections(response: str, splitter: str, n: int) -> bool:
    return follows("detectable_format:multiple_sections", response, section_spliter=_literal(splitter),
                   num_sections=n)


def _ifeval(instruction_id: str) -> str:
    return f"IFEval {instruction_id}"


N, PHRASE, WORD_LIST = Param("n", COUNT), Param("phrase", TEXT), Param("words", WORDS)
KEYWORD, LETTER_PARAM = Param("keyword", TEXT), Param("letter", LETTER)
register("english_lowercase", functools.partial(follows, "change_case:english_lowercase"), _ifeval("change_case:english_lowercase"),
         "all lowercase (str.islower) and langdetect says English")
register("english_uppercase", functools.partial(follows, "change_case:english_capital"), _ifeval("change_case:english_capital"),
         "all uppercase (str.isupper) and langdetect says English")
register("no_comma", functools.partial(follows, "punctuation:no_comma"), _ifeval("punctuation:no_comma"), "no ',' anywhere")
register("ends_with", ends_with, _ifeval("startend:end_checker"),
         "ends with phrase (case-insensitive; trailing whitespace and '\"' ignored)", PHRASE)
register("not_ends_with", not_ends_with, "harness", "antithesis of ends_with (IFEval startend:end_checker)", PHRASE)
register("quoted", quoted, _ifeval("startend:quotation"), "the whole response is wrapped in double quotes")
register("not_quoted", not_quoted, "harness", "antithesis of quoted (IFEval startend:quotation)")
register("exact_bullets", exact_bullets, _ifeval("detectable_format:number_bullet_lists"),
         "exactly n lines starting with '*' or '-' (markdown bullets)", N)
register("has_keywords", has_keywords, _ifeval("keywords:existence"),
         "every keyword appears (case-insensitive, as a substring)", Param("keywords", WORDS))
register("forbidden_words", forbidden_words, _ifeval("keywords:forbidden_words"),
         "none of words appears as a whole word (case-insensitive)", WORD_LIST)
register("uses_words", uses_words, "harness",
         "antithesis of forbidden_words (IFEval keywords:forbidden_words): some word appears as a whole word",
         WORD_LIST)
register("keyword_at_least", keyword_at_least, _ifeval("keywords:frequency"),
         "keyword occurs at least n times (case-insensitive, substrings count)", KEYWORD, N)
register("keyword_less_than", keyword_less_than, _ifeval("keywords:frequency"),
         "keyword occurs fewer than n times (case-insensitive, substrings count)", KEYWORD, N)
register("letter_at_least", letter_at_least, _ifeval("keywords:letter_frequency"),
         "letter occurs at least n times (case-insensitive)", LETTER_PARAM, N)
register("letter_less_than", letter_less_than, _ifeval("keywords:letter_frequency"),
         "letter occurs fewer than n times (case-insensitive)", LETTER_PARAM, N)
register("exact_paragraphs", exact_paragraphs, _ifeval("length_constraints:number_paragraphs"),
         "exactly n non-empty paragraphs separated by '***' dividers", N)
register("min_placeholders", min_placeholders, _ifeval("detectable_content:number_placeholders"),
         "at least n [bracketed] placeholders", N)
register("postscript", postscript, _ifeval("detectable_content:postscript"),
         "contains marker, e.g. 'P.S.' (case-insensitive; not anchored to a line start)", Param("marker", TEXT))
register("constrained_response", constrained_response, _ifeval("detectable_format:constrained_response"),
         "contains 'My answer is yes.', 'My answer is no.' or 'My answer is maybe.'")
register("min_highlights", min_highlights, _ifeval("detectable_format:number_highlighted_sections"),
         "at least n *highlighted* or **highlighted** spans", N)
register("min_sections", min_sections, _ifeval("detectable_format:multiple_sections"),
         "at least n sections headed '<splitter> <number>', e.g. 'Section 1'", Param("splitter", TEXT), N)
register("json_format", functools.partial(follows, "detectable_format:json_format"), _ifeval("detectable_format:json_format"),
         "the whole response parses as JSON (a ``` fence allowed)")
register("title", functools.partial(follows, "detectable_format:title"), _ifeval("detectable_format:title"), "contains a title in double angular brackets, <<title>>")
register("two_responses", functools.partial(follows, "combination:two_responses"), _ifeval("combination:two_responses"),
         "exactly two different responses separated by '******'")
