"""The request-parameter form builds the same Query as the equivalent DSL text."""

from __future__ import annotations

from typing import Any

import pytest

from mmdm.query import DslSemanticError, DslSyntaxError, parse, parse_params

from .conftest import oracle

EQUIVALENT: list[tuple[dict[str, Any], str]] = [
    ({}, ""),
    ({"DatasetId": "d-1", "DatasetVersion": "v1", "WorkspaceId": "105173"}, ""),
    ({"QueryTagsIncludeAll": "Lane line,Sunny day"},
     "Tags.all='Lane line' AND Tags.all='Sunny day'"),
    ({"QueryTagsIncludeAll": ["Lane line", "Sunny day"]},
     "Tags.all='Lane line' AND Tags.all='Sunny day'"),
    ({"QueryTagsIncludeAny": "a, b ,c"}, "Tags.all='a' OR Tags.all='b' OR Tags.all='c'"),
    ({"QueryTagsIncludeAny": "a"}, "Tags.all='a'"),
    ({"QueryTagsExclude": "a,b"}, "NOT Tags.all='a' AND NOT Tags.all='b'"),
    ({"QueryFileName": "car"}, "FileName:'car'"),
    ({"QueryFileDir": "cars/20250221/"}, "FileDir:'cars/20250221/'"),
    ({"QueryFileTypeIncludeAny": "image,video"}, "FileType='image' OR FileType='video'"),
    ({"QueryContentTypeIncludeAny": ["image/jpeg"]}, "ContentType='image/jpeg'"),
    ({"StartFileUpdateTime": "2025-01-12T14:36:01.000Z",
      "EndFileUpdateTime": "2025-02-12T14:36:01.000Z"},
     "FileUpdateTime>='2025-01-12T14:36:01.000Z' AND FileUpdateTime<='2025-02-12T14:36:01.000Z'"),
    ({"StartTagUpdateTime": "2025-01-12T14:36:01Z"}, "TagUpdateTime>='2025-01-12T14:36:01Z'"),
    ({"EndTagUpdateTime": "2025-01-12"}, "TagUpdateTime<='2025-01-12'"),
    ({"DatasetFileMetaIds": "f01,f02"},
     "DatasetFileMetaId='f01' OR DatasetFileMetaId='f02'"),
    ({"Status": "DELETED"}, "Status='DELETED'"),
    ({"Status": "all", "QueryFileName": "toyota"}, "FileName:'toyota' AND Status='ALL'"),
    ({"QueryText": "a fallen water horse", "TopK": "100", "ScoreThreshold": "0.6"},
     "Content:'a fallen water horse' AND TopK=100 AND ScoreThreshold=0.6"),
    ({"QueryText": "x", "TopK": 100, "ScoreThreshold": 0.6}, "Content:'x' AND TopK=100 AND "
     "ScoreThreshold=0.6"),
    ({"QueryImage": "oss://test-xxx-oss/car/0001.png", "QueryType": "VECTOR"},
     "QueryImage='oss://test-xxx-oss/car/0001.png' AND QueryType='VECTOR'"),
    ({"QueryText": "Lane line", "QueryType": "TAG"}, "Tags.all='Lane line' AND QueryType='TAG'"),
    ({"QueryText": "c", "QueryTagsIncludeAll": "a", "QueryType": "tag"},
     "Tags.all='a' AND Tags.all='c' AND QueryType='TAG'"),
    ({"SortBy": "FileCreateTime", "Order": "asc", "MaxResults": "50", "NextToken": "t_1"},
     "SortBy='FileCreateTime' AND Order='ASC' AND MaxResults=50 AND NextToken='t_1'"),
    ({"PageSize": 20}, "MaxResults=20"),
    ({"PageSize": 20, "MaxResults": 30}, "MaxResults=30"),
    ({"ThumbnailMode": "m_fill,w_100,h_100"}, "ThumbnailMode='m_fill,w_100,h_100'"),
    ({"QueryFileName": "", "QueryTagsIncludeAll": [], "TopK": None, "QueryTagsExclude": " , "},
     ""),
    ({"QueryFileDir": "blue_car", "QueryTagsIncludeAll": "lane line", "QueryTagsExclude":
      "rainy days", "StartFileUpdateTime": "2025-02-28T00:00:00Z", "QueryText": "horse",
      "TopK": "10"},
     "FileDir:'blue_car' AND FileUpdateTime>='2025-02-28T00:00:00Z' AND Tags.all='lane line' "
     "AND NOT Tags.all='rainy days' AND Content:'horse' AND TopK=10"),
    ({"QueryExpression": "FileDir:'blue_car' AND TopK=5", "DatasetId": "d", "WorkspaceId": "w"},
     "FileDir:'blue_car' AND TopK=5"),
    # Paging parameters page a QueryExpression, as PAI's SDK sends them.
    ({"QueryExpression": "FileDir:'blue_car'", "MaxResults": "20", "Order": "DESC",
      "SortBy": "FileUpdateTime", "NextToken": "abc"},
     "FileDir:'blue_car' AND MaxResults=20 AND Order='DESC' AND SortBy='FileUpdateTime' AND "
     "NextToken='abc'"),
    ({"QueryExpression": "Content:'a car' AND TopK=5", "PageSize": 7},
     "Content:'a car' AND TopK=5 AND MaxResults=7"),
    ({"QueryExpression": "Tags.user='x'", "Status": "DELETED"},  # the SDK's status field
     "Tags.user='x' AND Status='DELETED'"),
]


@pytest.mark.parametrize(("params", "dsl"), EQUIVALENT, ids=range(len(EQUIVALENT)))
def test_same_query_as_dsl(params: dict[str, Any], dsl: str) -> None:
    assert parse_params(params) == parse(dsl)


def test_same_rows_as_dsl() -> None:
    params = {"QueryTagsIncludeAny": "lane line,barrier gate", "QueryTagsExclude": "rainy days",
              "QueryFileTypeIncludeAny": "image", "EndFileUpdateTime": "2025-05-01T00:00:00Z"}
    expected = oracle(parse("(Tags.all='lane line' OR Tags.all='barrier gate') AND "
                            "NOT Tags.all='rainy days' AND FileType='image' AND "
                            "FileUpdateTime<='2025-05-01T00:00:00Z'"))
    assert oracle(parse_params(params)) == expected == {"f02", "f16", "f19"}


@pytest.mark.parametrize(("params", "code", "mentions"), [
    ({"QueryExpression": "FileName:'a'", "QueryFileName": "b"}, "conflicting-params",
     "QueryFileName"),
    ({"QueryExpression": "FileName:'a'", "TopK": 5}, "conflicting-params", "TopK"),
    ({"QueryExpression": "FileName:'a' AND MaxResults=5", "MaxResults": 10},
     "conflicting-params", "MaxResults is given both"),
    ({"QueryExpression": "FileName:'a'", "MaxResults": 0}, "bad-value", "MaxResults"),
    ({"QueryExpression": "FileName:'a' AND Status='ALL'", "Status": "DELETED"},
     "conflicting-params", "Status is given both"),
    ({"QueryFileNam": "a"}, "unknown-param", "did you mean 'QueryFileName'?"),
    ({"Tags": "a"}, "unknown-param", "Tags"),
    ({"QueryVideo": "oss://b/v.mp4"}, "unsupported-param", "QueryVideo"),
    ({"QueryText": "x", "AudioFactor": "200"}, "bad-value", "AudioFactor"),
    ({"QueryText": "x", "TextFactor": "0"}, "bad-value", "TextFactor"),
    ({"QueryText": "x", "ImageFactor": "-1"}, "bad-value", "ImageFactor"),
    ({"QueryText": "x", "IndexContent": "audio"}, "bad-value", "IndexContent"),
    ({"TopK": "ten"}, "type-mismatch", "TopK"),
    ({"TopK": "0"}, "bad-value", "TopK"),
    ({"StartFileUpdateTime": "yesterday"}, "bad-date", "StartFileUpdateTime"),
    ({"Status": "GONE"}, "bad-value", "Status"),
    ({"Order": "UP"}, "bad-value", "Order"),
    ({"SortBy": "DataSize"}, "bad-value", "SortBy"),
])
def test_bad_params(params: dict[str, Any], code: str, mentions: str) -> None:
    with pytest.raises(DslSemanticError) as info:
        parse_params(params)
    assert info.value.code == code
    assert mentions in info.value.message


def test_query_expression_errors_keep_their_position() -> None:
    with pytest.raises(DslSyntaxError) as info:
        parse_params({"QueryExpression": "FileName:'a' AND"})
    assert info.value.code == "unexpected-eof" and info.value.span is not None
