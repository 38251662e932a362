"""The documentation stays true to the code: every setting in bot/config.py is on the settings page with
its default, and every relative link in README.md and docs/ leads to a file (and heading) that exists.
docs/drafts/ holds drafts of other branches, waiting to be placed in the pages: their links are left
out, and a setting documented only in a draft counts until it is placed."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from bot.config import PROJECT_ROOT, SETTINGS

DOCS = PROJECT_ROOT / "docs"
SETTINGS_PAGE = DOCS / "settings.md"
PAGES = sorted([PROJECT_ROOT / "README.md", *(p for p in DOCS.rglob("*.md") if DOCS / "drafts" not in p.parents)])


@cache
def tokens(page: Path) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(page.read_text(encoding="utf-8"))


def plain_text(inline: Token) -> str:
    """A heading's text as GitHub slugs it: text and code, without the markup."""
    return "".join(child.content for child in inline.children or [] if child.type in {"text", "code_inline"})


def github_slug(text: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    """The heading anchors of a page; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    page_tokens = tokens(page)
    for token, inline in zip(page_tokens, page_tokens[1:]):
        if token.type == "heading_open":
            slug = github_slug(plain_text(inline))
            found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(found)


def link_targets(page: Path) -> list[str]:
    """The href of every link and the src of every image on a page (code blocks left out)."""
    targets = []
    for token in tokens(page):
        for child in token.children or []:
            if child.type == "link_open":
                targets.append(str(child.attrs["href"]))
            elif child.type == "image":
                targets.append(str(child.attrs["src"]))
    return targets


def broken_links(page: Path, root: Path = PROJECT_ROOT) -> list[str]:
    broken = []
    for target in link_targets(page):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # a web address: not ours to check offline
        path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not path.exists() or root not in (path, *path.parents):
            broken.append(f"{target}: no such file")
        elif parts.fragment and (path.suffix != ".md" or parts.fragment not in anchors(path)):
            broken.append(f"{target}: no heading #{parts.fragment} in {path.relative_to(root)}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## The `/crystals` command: help\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n## Top\n\n[a](other.md#the-crystals-command-help) [b](#top-1) [c](https://x.org/y)\n"
                    "[d](gone.md) [e](other.md#nowhere) ![f](other.md#other-page) [g](#top-2)\n"
                    "```\n[not a link](gone.md)\n```\n", encoding="utf-8")
    assert broken_links(page, tmp_path) == ["gone.md: no such file",
                                            "other.md#nowhere: no heading #nowhere in other.md",
                                            "#top-2: no heading #top-2 in page.md"]


def settings_rows(page: Path) -> dict[str, str]:
    """The settings tables of a page: setting name -> its default column."""
    rows: dict[str, str] = {}
    cells: list[str] = []
    page_tokens = tokens(page)
    for token, inline in zip(page_tokens, page_tokens[1:]):
        if token.type == "tr_open":
            cells = []
        elif token.type in {"th_open", "td_open"}:
            cells.append(inline.content)
        elif token.type == "tr_close" and re.fullmatch(r"`[A-Z0-9_]+`", cells[0]):
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_every_setting_is_on_the_settings_page_with_its_default() -> None:
    """A setting that only a draft under docs/drafts/ documents yet is waiting to be placed on the page by
    whoever merges that draft; until then the draft's table counts."""
    rows = settings_rows(SETTINGS_PAGE)
    drafted = {name: default for draft in sorted((DOCS / "drafts").glob("*.md"))
               for name, default in settings_rows(draft).items() if name not in rows}
    assert sorted({**rows, **drafted}) == sorted(SETTINGS), "the settings page and bot/config.py's SETTINGS differ"
    for name, (default, _parse, _help) in SETTINGS.items():
        documented = rows.get(name, drafted.get(name))
        if default:
            assert documented == f"`{default}`", name
        else:  # no default, or empty: the page says what that means, e.g. "(required)", "(empty: all)"
            assert documented and documented.startswith("(") and documented.endswith(")"), name
