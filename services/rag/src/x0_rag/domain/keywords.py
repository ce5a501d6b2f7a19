"""The keyword query syntax: words, quoted phrases, required and excluded terms.

    kafka consumer lag          any of the words (OR), ranked by BM25
    "consumer group" offsets    a quoted phrase must appear, words in that order
    +kafka lag                  a ``+`` word must appear
    kafka -zookeeper            a ``-`` word (or ``-"phrase"``) must not appear

Every positive word (plain, ``+`` or in a phrase) counts in the BM25 score. Words
are compared after analysis (lower case, English stop words dropped, Snowball
English stemming), so ``"Consumer Groups"`` matches ``consumer group``; a phrase
matches when its analysed words are consecutive among the document's analysed words
(stop words between them are skipped on both sides). A ``+`` or ``-`` counts only at
the start of a word (``e-mail`` is a plain word), an unclosed quote runs
to the end, and nothing is ever a syntax error. A query of only ``-`` terms matches
nothing (there is nothing to rank by).

This module only parses; :mod:`x0_rag.adapters.lexical` analyses and scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Occurrence = Literal["should", "must", "must_not"]

# A quoted phrase (closing quote optional) or a bare word, each with an optional sign.
_PART = re.compile(r'([+-]?)"([^"]*)"?|([+-]?)(\S+)')


@dataclass(frozen=True, slots=True)
class Clause:
    """One part of a query: a word or a phrase (raw text), and how it must occur."""

    text: str
    occurrence: Occurrence
    phrase: bool = False


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    """A parsed query: its clauses in the order written."""

    clauses: tuple[Clause, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str) -> KeywordQuery:
        """Parse ``text`` (see the module's syntax); never fails."""
        clauses = []
        for match in _PART.finditer(text):
            sign, quoted, word_sign, word = match.groups()
            if word is not None:
                sign, content, phrase = word_sign, word, False
            else:
                content, phrase = quoted, True
            if not content.strip():
                continue
            occurrence: Occurrence = (
                "must_not" if sign == "-" else "must" if sign == "+" or phrase else "should"
            )
            clauses.append(Clause(content, occurrence, phrase))
        return cls(tuple(clauses))

    @property
    def positive(self) -> list[Clause]:
        """The clauses whose words are scored."""
        return [clause for clause in self.clauses if clause.occurrence != "must_not"]
