"""Build the evaluation set from the manual pages installed on this machine.

Source: every English page under ``/usr/share/man/man[1-8]`` (roff ``man`` and
``mdoc`` macros, gzip or plain), read directly; no ``man``/``groff`` run, no network.

- query: the NAME line's description, without the page's names
  (``ls \\- list directory contents`` gives ``list directory contents``);
- document: the page's text from its DESCRIPTION section on (every section but NAME
  and SYNOPSIS when it has none), plain, truncated to ``MAX_DOCUMENT_CHARS`` (about two
  chunks of the service's default 512 characters: all of it reaches the model);
- the answer to a query is the page it came from.

Pages are left out when they redirect (``.so``), have no NAME description, have a
document shorter than ``MIN_DOCUMENT_CHARS``, or
repeat an earlier page's text (the same page in two sections or packages). The Google
Cloud SDK's ``gcloud alpha``/``gcloud beta`` pages are left out: they repeat the
released command's page with a release note, which would give a query three answers. A query
whose text is the description of another kept page too is ambiguous and never asked
(its page stays in the corpus).

Everything is deterministic: pages sorted by path, selections by a SHA-256 of the
page id, so the same installed pages give the same set.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MAN_ROOT: Final = Path("/usr/share/man")
MAX_DOCUMENT_CHARS: Final = 800
MIN_DOCUMENT_CHARS: Final = 150
MIN_QUERY_WORDS: Final = 3

_PRERELEASE: Final = ("gcloud_alpha_", "gcloud_beta_")
_SECTION = re.compile(r'^\.S[Hh]\s+"?([^"\n]*)"?\s*$')
_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_SIZE = re.compile(r"\\s[-+]?\d")
_NAMED = re.compile(r"\\\[([^\]]*)\]|\\\((..)")
_STRING = re.compile(r"\\\*(\[[^\]]*\]|\(..|.)")
_OTHER = re.compile(r"\\[&|^%:/,~0dukrcz]|\\[hvwnoHSx]'[^']*'|\\[nk]\(?\S")
_GLYPHS: Final = {
    "em": "—",
    "en": "\u2013",
    "aq": "'",
    "dq": '"',
    "lq": '"',
    "rq": '"',
    "oq": "'",
    "cq": "'",
    "bu": "•",
    "co": "©",
    "rg": "®",
    "mi": "-",
    "hy": "-",
    "ti": "~",
    "ha": "^",
    "rs": "\\",
    "ga": "`",
    "cq ": "'",
    "Fo": "«",
    "Fc": "»",
}
# mdoc/man macros whose arguments are running text.
_TEXT_MACROS: Final = {
    "B",
    "I",
    "BR",
    "RB",
    "BI",
    "IB",
    "IR",
    "RI",
    "SM",
    "SB",
    "TP",
    "IP",
    "Nm",
    "Nd",
    "Ar",
    "Fl",
    "Cm",
    "Op",
    "Pa",
    "Em",
    "Sy",
    "Va",
    "Ev",
    "Xr",
    "Dq",
    "Qq",
    "Sq",
    "Li",
    "Ql",
    "Fn",
    "Fa",
    "Ft",
    "Dv",
    "Er",
    "It",
    "Tn",
    "Ic",
    "Ad",
    "Ms",
    "Ux",
    "At",
    "Bx",
    "Pq",
    "Aq",
    "Brq",
    "Ta",
    "No",
    "Ns",
    "Lk",
    "Mt",
    "UR",
    "MT",
}


@dataclass(frozen=True, slots=True)
class Page:
    """One kept manual page."""

    id: str  # "ls.1"
    query: str
    text: str


def plain(line: str) -> str:
    """A roff line's text: escapes decoded, font changes dropped."""
    line = _FONT.sub("", line)
    line = _SIZE.sub("", line)
    line = _STRING.sub("", line)
    line = line.replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ")
    line = _NAMED.sub(lambda m: _GLYPHS.get(m.group(1) or m.group(2) or "", ""), line)
    line = _OTHER.sub("", line)
    return line.replace("\\", "")


def _macro_text(line: str) -> str | None:
    """The text a macro line contributes, or None for layout-only macros."""
    name, _, rest = line[1:].strip().partition(" ")
    if name not in _TEXT_MACROS:
        return None
    words = re.findall(r'"[^"]*"|\S+', rest)
    return " ".join(word.strip('"') for word in words)


def sections(source: str) -> dict[str, list[str]]:
    """The page's text lines by upper-case section name (first occurrence wins)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in source.splitlines():
        raw = line
        if raw.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        match = _SECTION.match(raw)
        if match:
            name = plain(match.group(1)).strip().upper()
            current = found.setdefault(name, []) if name not in found else None
            continue
        if current is None:
            continue
        if raw.startswith((".", "'")):
            text = _macro_text(raw)
            if text is None:
                continue
            if raw[1:3] == "Nd":
                text = "\\- " + text
            raw = text
        current.append(plain(raw))
    return found


def name_description(lines: list[str]) -> str | None:
    """``name1, name2 \\- what it does`` -> ``what it does``."""
    text = " ".join(" ".join(lines).split())
    for separator in (" \\- ", " - ", " — ", " -- "):
        if separator in text:
            return text.split(separator, 1)[1].strip()
    return None


def read_page(path: Path) -> tuple[str, str] | None:
    """(query, document) of one page file, or None when it is left out."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    source = raw.decode("utf-8", errors="replace")
    if source.lstrip().startswith(".so "):
        return None
    found = sections(source)
    name = found.pop("NAME", None)
    found.pop("SYNOPSIS", None)
    names = list(found)
    if not name or not names:
        return None
    first = names.index("DESCRIPTION") if "DESCRIPTION" in names else 0
    description = [line for section in names[first:] for line in found[section]]
    query = name_description(name)
    if not query:
        return None
    text = " ".join(" ".join(description).split())
    if len(text) < MIN_DOCUMENT_CHARS:
        return None
    return query, truncate(text)


def truncate(text: str) -> str:
    """At most ``MAX_DOCUMENT_CHARS``, cut at a word boundary."""
    if len(text) <= MAX_DOCUMENT_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_DOCUMENT_CHARS)
    return text[: cut if cut > 0 else MAX_DOCUMENT_CHARS]


def page_id(path: Path) -> str:
    """``/usr/share/man/man1/ls.1.gz`` -> ``ls.1``."""
    return path.name.removesuffix(".gz")


def digest(text: str) -> int:
    """A stable pseudo-random order key."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def collect(root: Path = MAN_ROOT) -> list[Page]:
    """Every kept page, sorted by id (see the module's rules)."""
    pages: list[Page] = []
    seen_ids: set[str] = set()
    seen_texts: set[str] = set()
    for path in sorted(root.glob("man[1-8]/*")):
        if not path.is_file():
            continue
        pid = page_id(path)
        if pid in seen_ids or pid.startswith(_PRERELEASE):
            continue
        try:
            parsed = read_page(path)
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        if parsed is None or parsed[1] in seen_texts:
            continue
        seen_ids.add(pid)
        seen_texts.add(parsed[1])
        pages.append(Page(pid, parsed[0], parsed[1]))
    return sorted(pages, key=lambda page: page.id)


def answerable(pages: list[Page]) -> list[Page]:
    """Pages whose query has ``MIN_QUERY_WORDS`` words and one right answer."""
    counts = Counter(page.query.lower() for page in pages)
    return [
        page
        for page in pages
        if counts[page.query.lower()] == 1 and len(page.query.split()) >= MIN_QUERY_WORDS
    ]
