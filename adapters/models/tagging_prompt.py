"""The prompt that turns a tag definition into a VLM question, and the reader of its answers.

PAI leaves both open (pai-compat §5): the definition is a guide prompt plus ``{tag: when it
applies}``. We send the guide prompt as system text, the table as a JSON object (tag names carry
commas and slashes, so a JSON object is the unambiguous table), and ask for JSON only. Real
models still wrap JSON in code fences or prose, answer in another case or with a plural, and
sometimes invent tags, so the reader extracts the first usable JSON value and maps each name
back onto the definition; it raises ``TagParseError`` only when no JSON can be found, and the
tagger then asks once more with ``repair_text``.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .base import TagDefinition, TagParseError, TagResult
from .service_errors import shorten

# The fake model server finds the table by this heading, as a model would read it.
TAG_TABLE_HEADING = "Tag definitions (a JSON object: tag name -> when the tag applies):"

# Similarity (difflib ratio on normalised names) above which an unknown name is taken to be a
# misspelling, plural or truncation of a defined tag ("Speed bumps", "Fallen traffic cones").
# High on purpose: a wrong tag is worse than a dropped one, and one character off in a short
# Chinese name (反光条 / 反光带, ratio 0.67) must not match.
NEAR_MISS_CUTOFF = 0.85
# The best near match must beat the runner-up by this much, or the name counts as ambiguous.
NEAR_MISS_MARGIN = 0.05
# Real answers are short; scanning more bracket positions than this only costs time.
_MAX_JSON_STARTS = 200

_ROLE = ("You label images for a dataset. Look at the image carefully and answer with JSON "
         "only.")
_RULES = (
    "Decide which of these tags apply to the image. Rules:\n"
    "- Use only tag names from the definitions above, copied exactly as written (same "
    "language, spelling and punctuation). Never translate, rename or invent a tag.\n"
    "- Include a tag only when the image clearly shows what its description says.\n"
    "- If no tag applies, use an empty list."
)
_LIST_FORMAT = ('Answer with a JSON array of tag names and nothing else (no code fences, no '
                'explanation), for example: ["<tag name>", "<tag name>"]')
_OBJECT_FORMAT = (
    "Also describe the image in at most 50 words and give exactly 5 keywords, written in the "
    "language of the tag definitions. Answer with one JSON object and nothing else (no code "
    'fences, no explanation), in this form: {"tags": ["<tag name>", ...], "description": '
    '"<at most 50 words>", "keywords": ["<k1>", "<k2>", "<k3>", "<k4>", "<k5>"]}'
)

_TAGS_KEYS = ("tags", "labels", "tag", "标签")
_DESCRIPTION_KEYS = ("description", "desc", "caption", "描述")
_KEYWORDS_KEYS = ("keywords", "keyword", "关键词")
_NAME_KEYS = ("name", "tag", "label")
_KEYWORD_SEPARATORS = re.compile(r"[,,、;;]\s*")
_FENCED = re.compile(r"```[\w-]*[ \t]*\n?(.*?)```", re.S)


@dataclass(frozen=True)
class TagPrompt:
    system: str
    user: str


def build_tag_prompt(definition: TagDefinition, *, describe: bool = False) -> TagPrompt:
    """System text (the guide prompt) and the user question that goes with the image."""
    guide = definition.guide_prompt.strip()
    system = f"{guide}\n\n{_ROLE}" if guide else _ROLE
    table = json.dumps(definition.tags, ensure_ascii=False, indent=2)
    answer_format = _OBJECT_FORMAT if describe else _LIST_FORMAT
    return TagPrompt(system, f"{TAG_TABLE_HEADING}\n{table}\n\n{_RULES}\n\n{answer_format}")


def repair_text(*, describe: bool = False) -> str:
    """The follow-up turn after an unreadable answer (sent after that answer)."""
    answer_format = _OBJECT_FORMAT if describe else _LIST_FORMAT
    return ("Your previous answer could not be read as JSON. Reply with valid JSON only, "
            f"nothing before or after it. {answer_format}")


def ask_with_repair(ask: Callable[[list[dict[str, Any]]], str], messages: list[dict[str, Any]],
                    reply: Callable[[str, str], dict[str, Any]], definition: TagDefinition, *,
                    describe: bool, model: str, uri: str) -> TagResult:
    """Ask once; if the answer holds no JSON, ask once more to repair it, with the answer and
    the repair request appended as ``reply(role, text)`` messages (the service's format).

    Raises:
        TagParseError: neither answer could be read.
    """
    first = ask(messages)
    try:
        return parse_tag_answer(first, definition)
    except TagParseError:
        pass
    second = ask([*messages, reply("assistant", first),
                  reply("user", repair_text(describe=describe))])
    try:
        return parse_tag_answer(second, definition)
    except TagParseError:
        raise TagParseError(f"{model} gave no readable JSON for {uri}, even after a repair "
                            f"request; last answer: {shorten(second)!r}",
                            raw=second, answers=(first, second)) from None


def normalise_tag_name(name: str) -> str:
    """Compatibility form, casefolded, without punctuation or whitespace.

    NFKC folds full-width forms (``,`` ``:`` ``A``) into ASCII, so a Chinese answer with
    full-width punctuation meets an ASCII definition and vice versa.
    """
    folded = unicodedata.normalize("NFKC", name).casefold()
    kept = "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZC")
    return kept or folded.strip()


class TagNameMatcher:
    """Maps names a model wrote onto the definition's names."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        self._exact = set(self.names)
        by_key: dict[str, str | None] = {}
        for name in self.names:
            key = normalise_tag_name(name)
            # Two names that normalise alike are only reachable by their exact spelling.
            by_key[key] = None if key in by_key and by_key[key] != name else name
        self._by_key = by_key
        self._keys = [k for k, v in by_key.items() if v is not None]

    def match(self, written: str) -> str | None:
        written = written.strip()
        if written in self._exact:
            return written
        found = self._match_key(normalise_tag_name(written))
        if found is None:
            # Models sometimes echo "name: description" from the table.
            head = re.split(r"[::]", written, maxsplit=1)[0]
            if head != written:
                found = self._match_key(normalise_tag_name(head))
        return found

    def _match_key(self, key: str) -> str | None:
        if not key:
            return None
        if key in self._by_key:
            return self._by_key[key]
        scored = sorted(((difflib.SequenceMatcher(None, key, k).ratio(), k) for k in self._keys),
                        reverse=True)
        if not scored or scored[0][0] < NEAR_MISS_CUTOFF:
            return None
        if len(scored) > 1 and scored[0][0] - scored[1][0] < NEAR_MISS_MARGIN:
            return None
        return self._by_key[scored[0][1]]


def parse_tag_answer(raw: str, definition: TagDefinition) -> TagResult:
    """Read a model's answer into a ``TagResult`` over the definition's names.

    Accepts a JSON array of names, an object with ``tags`` (plus ``description`` and
    ``keywords``), or an object of ``{name: true/false}``, bare, fenced or inside prose.

    Raises:
        TagParseError: no JSON array or object could be found in the answer.
    """
    value = _first_usable_json(raw)
    if value is None:
        raise TagParseError("the model's answer holds no readable JSON array or object",
                            raw=raw)
    matcher = TagNameMatcher(list(definition.tags))
    written, description, keywords = _fields(value, matcher)
    chosen: set[str] = set()
    dropped: list[str] = []
    for name in written:
        found = matcher.match(name)
        if found is not None:
            chosen.add(found)
        elif name.strip() and name.strip() not in dropped:
            dropped.append(name.strip())
    tags = [name for name in definition.tags if name in chosen]
    return TagResult(tags=tags, description=description, keywords=keywords, dropped=dropped,
                     raw=raw)


def _first_usable_json(raw: str) -> Any:
    for value in _json_values(raw):
        if _is_usable(value):
            return value
    return None


def _json_values(raw: str) -> Iterator[Any]:
    """JSON values in the answer: fenced blocks first, then the whole text, then embedded ones."""
    decoder = json.JSONDecoder()
    texts = [m.group(1) for m in _FENCED.finditer(raw)] + [raw]
    for text in texts:
        try:
            yield json.loads(text.strip())
        except ValueError:
            pass
        starts = [i for i, ch in enumerate(text) if ch in "[{"][:_MAX_JSON_STARTS]
        for start in starts:
            try:
                yield decoder.raw_decode(text, start)[0]
            except ValueError:
                continue


def _is_usable(value: Any) -> bool:
    if isinstance(value, list):
        return all(isinstance(item, (str, dict)) for item in value)
    if isinstance(value, dict):
        if any(key in value for key in _TAGS_KEYS):
            return True
        return bool(value) and all(isinstance(v, bool) for v in value.values())
    return False


def _fields(value: Any, matcher: TagNameMatcher) -> tuple[list[str], str | None, list[str]]:
    """(tag names as written, description, keywords) from a usable JSON value."""
    if isinstance(value, list):
        return _names(value, matcher), None, []
    tags_value = next((value[k] for k in _TAGS_KEYS if k in value), None)
    if tags_value is None:  # {name: true/false}
        return [name for name, present in value.items() if present], None, []
    description = next((value[k] for k in _DESCRIPTION_KEYS if k in value), None)
    keywords = next((value[k] for k in _KEYWORDS_KEYS if k in value), [])
    if isinstance(keywords, str):
        keywords = _KEYWORD_SEPARATORS.split(keywords)
    keywords = [str(k).strip() for k in keywords if str(k).strip()] if isinstance(
        keywords, list) else []
    description = str(description).strip() if description is not None else None
    return _names(tags_value, matcher), description or None, keywords


def _names(value: Any, matcher: TagNameMatcher) -> list[str]:
    if isinstance(value, str):
        # One string may hold one name (names can contain commas) or a comma-separated list.
        return [value] if matcher.match(value) else _KEYWORD_SEPARATORS.split(value)
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for item in value:
        if isinstance(item, dict):
            item = next((item[k] for k in _NAME_KEYS if k in item), None)
        if item is not None:
            names.append(str(item))
    return names
