"""The tagging prompt and the reader of model answers, without any server."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmdm.adapters.models.base import TagDefinition, TagParseError
from mmdm.adapters.models.tagging_prompt import (
    TAG_TABLE_HEADING,
    build_tag_prompt,
    normalise_tag_name,
    parse_tag_answer,
    repair_text,
)
from tests.models.driving_tags import DRIVING_DEFINITION, DRIVING_DEFINITION_ZH, DRIVING_TAGS

NAMES = list(DRIVING_TAGS)


def tags_of(raw: str, definition: TagDefinition = DRIVING_DEFINITION) -> list[str]:
    return parse_tag_answer(raw, definition).tags


def test_prompt_carries_guide_table_and_answer_format() -> None:
    prompt = build_tag_prompt(DRIVING_DEFINITION)
    assert prompt.system.startswith(DRIVING_DEFINITION.guide_prompt)
    start = prompt.user.index(TAG_TABLE_HEADING) + len(TAG_TABLE_HEADING)
    table = json.JSONDecoder().raw_decode(prompt.user, prompt.user.index("{", start))[0]
    assert table == DRIVING_TAGS
    assert "JSON array" in prompt.user and '"description"' not in prompt.user


def test_describe_prompt_asks_for_an_object_with_description_and_keywords() -> None:
    prompt = build_tag_prompt(DRIVING_DEFINITION_ZH, describe=True)
    assert prompt.system.startswith("作为一个拥有多年驾驶经验的老司机")
    assert '"description"' in prompt.user and '"keywords"' in prompt.user
    assert "减速带" in prompt.user  # the table keeps Chinese names unescaped
    assert "valid JSON only" in repair_text(describe=True)
    assert '"keywords"' in repair_text(describe=True)


@pytest.mark.parametrize("raw", [
    '["Tunnel", "Crosswalk"]',
    '```json\n["Tunnel", "Crosswalk"]\n```',
    '```\n["Crosswalk", "Tunnel"]\n```',
    'Sure! The tags are: ["Tunnel", "Crosswalk"]. Hope this helps [1].',
    'I see [a tunnel] and stripes.\n{"tags": ["Crosswalk", "Tunnel"]}',
    '{"Tunnel": true, "Crosswalk": true, "Ramp": false}',
    '[{"name": "Tunnel"}, {"tag": "Crosswalk"}]',
    '["tunnel", "CROSSWALK", "Tunnel"]',
    '["Crosswalk: White parallel stripes on roads", "Tunnel"]',
])
def test_answer_forms_all_read_the_same(raw: str) -> None:
    result = parse_tag_answer(raw, DRIVING_DEFINITION)
    assert result.tags == ["Crosswalk", "Tunnel"]  # definition order, deduplicated
    assert result.dropped == []
    assert result.raw == raw


def test_names_match_through_case_whitespace_and_punctuation() -> None:
    raw = json.dumps(["left turn right turn u turn arrows", "LANE MERGE / DIVERGE",
                      "wet road in rain.", "No parking sign", "non-motorized  vehicle"])
    assert tags_of(raw) == ["Left-turn, right-turn, U-turn arrows", "Lane merge/diverge",
                            "No-parking sign", "Wet road in rain", "Non-motorized vehicle"]


def test_near_misses_match_and_unknown_names_are_dropped() -> None:
    raw = '["Speed bumps", "Fallen traffic cones", "Tunnels", "Traffic light", "Pedestrian"]'
    result = parse_tag_answer(raw, DRIVING_DEFINITION)
    assert result.tags == ["Fallen traffic cone", "Speed bump", "Tunnel"]
    assert result.dropped == ["Traffic light", "Pedestrian"]


def test_chinese_names_with_full_width_punctuation() -> None:
    raw = '```json\n["减速带", "人行 横道", "车道合流/分流", "左转,右转,掉头箭头", "红绿灯", "机动车辆"]\n```'
    result = parse_tag_answer(raw, DRIVING_DEFINITION_ZH)
    assert result.tags == ["减速带", "左转、右转、掉头箭头", "人行横道", "机动车", "车道合流/分流"]
    assert result.dropped == ["红绿灯"]


def test_one_character_off_in_a_short_chinese_name_is_not_a_match() -> None:
    assert parse_tag_answer('["反光带", "电动车"]', DRIVING_DEFINITION_ZH).tags == []


def test_ambiguous_near_miss_and_ambiguous_normal_form_are_dropped() -> None:
    definition = TagDefinition("", {"Lane-merge": "a", "Lane merge": "b", "Stop sign A": "c",
                                    "Stop sign B": "d"})
    result = parse_tag_answer('["Lane merge", "LANE MERGE", "Stop sign"]', definition)
    assert result.tags == ["Lane merge"]  # the exact spelling still works
    assert result.dropped == ["LANE MERGE", "Stop sign"]


def test_describe_object_keeps_description_and_keywords() -> None:
    raw = ('Here you go:\n```json\n{"tags": ["Cloudy"], "description": "  A cloudy highway. ",'
           ' "keywords": "road、sky、cloud、car、lane"}\n```')
    result = parse_tag_answer(raw, DRIVING_DEFINITION)
    assert result.tags == ["Cloudy"]
    assert result.description == "A cloudy highway."
    assert result.keywords == ["road", "sky", "cloud", "car", "lane"]


def test_empty_list_means_no_tags() -> None:
    result = parse_tag_answer("[]", DRIVING_DEFINITION)
    assert result.tags == [] and result.dropped == []


@pytest.mark.parametrize("raw", [
    "", "None of these tags apply.", '["Tunnel", "Crosswalk"', "true", "42", '"Tunnel"',
    "[1, 2]", '{"answer": "Tunnel"}',
])
def test_no_usable_json_raises_with_the_raw_answer(raw: str) -> None:
    with pytest.raises(TagParseError) as info:
        parse_tag_answer(raw, DRIVING_DEFINITION)
    assert info.value.raw == raw
    assert not info.value.retriable


def test_normal_form() -> None:
    assert normalise_tag_name("  Lane merge/Diverge ") == "lanemergediverge"
    assert normalise_tag_name("车道合流/分流") == normalise_tag_name("车道合流/分流")
    assert normalise_tag_name("Tunnel") == normalise_tag_name("Tunnel")  # full-width letters
    assert normalise_tag_name("...") == "..."  # nothing left: keep the name itself


UNKNOWN = ["Traffic light", "Pedestrian", "Bus stop", "Helicopter", "Snowman"]
CASINGS = [str, str.lower, str.upper, str.title]
WRAPS = [lambda s: s, lambda s: f"```json\n{s}\n```", lambda s: f"Answer:\n{s}\nDone.",
         lambda s: f'{{"tags": {s}, "description": "x", "keywords": []}}']


@settings(max_examples=150, deadline=None)
@given(chosen=st.lists(st.sampled_from(NAMES), unique=True),
       unknown=st.lists(st.sampled_from(UNKNOWN), unique=True),
       casing=st.sampled_from(CASINGS), wrap=st.sampled_from(WRAPS),
       spaced=st.booleans(), order=st.randoms(use_true_random=False))
def test_any_subset_round_trips_whatever_the_wrapping(chosen, unknown, casing, wrap, spaced,
                                                       order) -> None:
    written = [casing(name) for name in chosen]
    if spaced:
        written = [f"  {name.replace(' ', '  ')} " for name in written]
    answer = written + unknown
    order.shuffle(answer)
    result = parse_tag_answer(wrap(json.dumps(answer, ensure_ascii=False)), DRIVING_DEFINITION)
    assert result.tags == [name for name in NAMES if name in chosen]
    assert sorted(result.dropped) == sorted(unknown)
