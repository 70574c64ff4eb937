"""THE case table: DSL text -> the ids it matches in ``dataset.py``, or the error it raises.

Expected ids are written by hand (numbers n stand for ``f{n:02d}``; ``A`` is every ACTIVE row,
the default Status scope). ``test_semantics.py`` checks each valid case on every backend and
against the oracle; ``test_errors.py`` checks each error case's code and span.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .dataset import ACTIVE_IDS


@dataclass(frozen=True)
class Gap:
    """A declared backend gap: the case must fail on that backend with ``raises``."""

    kind: str  # notimpl | notyet | never
    raises: type[BaseException]
    reason: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    ids: frozenset[str] | None = None
    error: str | None = None
    span: tuple[int, int] | None = None
    gaps: Mapping[str, Gap] = field(default_factory=dict)


def _ids(numbers: Iterable[int]) -> frozenset[str]:
    return frozenset(f"f{n:02d}" for n in numbers)


def case(id: str, text: str, ids: Iterable[int], gaps: Mapping[str, Gap] | None = None) -> Case:
    return Case(id, text, ids=_ids(ids), gaps=gaps or {})


def err(id: str, text: str, code: str, at: str | None = None,
        span: tuple[int, int] | None = None) -> Case:
    """An error case; ``at`` locates the expected span as the first occurrence of a substring."""
    if at is not None:
        start = text.index(at)
        span = (start, start + len(at))
    return Case(id, text, error=code, span=span)


A = frozenset(int(i[1:]) for i in ACTIVE_IDS)
IMAGE = {1, 2, 3, 4, 5, 6, 8, 12, 13, 14, 15, 16, 17, 19, 20}
HAS_SIJ = {1, 2, 4, 6, 8, 12, 13, 16, 19, 20}

OFFICIAL_ZH = (
    "(FileUpdateTime > '2025-02-28T00:00:00Z' AND FileUpdateTime < '2025-05-30T09:27:29Z') AND "
    "FileDir:'blue_car' AND NOT FileName=\"toyota.jpg\" AND (( Tags.all='lane line' AND "
    "Tags.all='barrier gate') OR NOT Tags.user='rainy days' ) AND HAS SemanticIndexJobId AND "
    "Content:'a fallen water horse' AND TopK=100 AND SignMode='PUBLIC'"
)
OFFICIAL_EN = OFFICIAL_ZH.replace("'", '"')
DEEP_NOT = "NOT " * 70 + "FileName='a'"

CASES: list[Case] = [
    # -- the official example, both quote styles, any keyword case ------------------------------
    case("official-zh", OFFICIAL_ZH, {2, 16}),
    case("official-en", OFFICIAL_EN, {2, 16}),
    case("official-lowercase", OFFICIAL_ZH.replace("AND", "and").replace("OR", "or")
         .replace("NOT", "not").replace("HAS", "Has"), {2, 16}),
    case("official-group", "(FileName:'toyota' AND ContentType='image/jpeg') OR "
         "(FileName:'cat' AND ContentType='image/png')", {1, 12, 20}),
    # -- FileName (TEXT) --------------------------------------------------------------------------
    case("name-match", "FileName:'toyota'", {1, 20}),
    case("name-match-upper-term", "FileName:'TOYOTA'", {1, 20}),
    case("name-match-upper-row", "FileName:'upper'", {16}),
    case("name-match-ext", "FileName:'.jpg'", {1, 2, 4, 6, 7, 8, 14, 16, 17, 19, 20}),
    case("name-match-spaces-around-op", "FileName : 'toyota'", {1, 20}),
    case("name-eq", "FileName='toyota.jpg'", {1, 20}),
    case("name-eq-is-case-sensitive", "FileName='TOYOTA.JPG'", set()),
    case("name-not-eq", "NOT FileName='toyota.jpg'", A - {1, 20}),
    case("name-not-match", "NOT FileName:'.png'", A - {3, 5, 12, 15}),
    case("name-double-quotes-in-single", "FileName='say \"cheese\".png'", {5}),
    case("name-escaped-single-quote", "FileName='O\\'Brien.jpg'", {4}),
    case("name-single-quote-in-double", "FileName=\"O'Brien.jpg\"", {4}),
    case("name-escaped-double-quote", 'FileName="say \\"cheese\\".png"', {5}),
    case("name-escaped-backslash", "FileName='back\\\\slash.jpg'", {8}),
    case("name-match-backslash", "FileName:'\\\\'", {8}),
    case("name-match-percent-is-literal", "FileName:'%'", {19}),
    case("name-match-underscore-is-literal", "FileName:'_'", {3, 15, 19}),
    case("name-match-cjk", "FileName:'车道'", {6}),
    case("name-match-unicode-escape", "FileName:'\\u8f66'", {6}),
    case("name-casefold-sharp-s", "FileName:'straße'", {7}),
    case("name-casefold-accent", "FileName:'école'", {14}),
    case("name-match-emoji", "FileName:'🚗'", {15}),
    case("name-match-empty-term", "FileName:''", A),
    case("name-match-with-space", "FileName:'lane line'", {17}),
    case("name-has", "HAS FileName", A),
    case("name-not-has", "NOT HAS FileName", set()),
    case("name-attr-any-case", "filename:'toyota' AnD datasize >= 100", {1, 20}),
    # -- FileDir (TEXT) ---------------------------------------------------------------------------
    case("dir-match", "FileDir:'blue_car'", {1, 2, 3, 16}),
    case("dir-match-prefix", "FileDir:'people'", {4, 5}),
    case("dir-eq", "FileDir='people'", {4}),
    case("dir-eq-empty", "FileDir=''", {11}),
    case("dir-match-sharp-s", "FileDir:'straße'", {7}),
    case("dir-match-folded-term", "FileDir:'STRASSE'", {7}),
    case("dir-not-match", "NOT FileDir:'cars'", A - {1, 2, 3, 15, 16, 20}),
    case("dir-match-percent", "FileDir:'%'", {19}),
    case("dir-match-underscore", "FileDir:'_'", {1, 2, 3, 8, 16, 20}),
    case("dir-has-empty-string", "HAS FileDir", A),
    # -- FileType / ContentType / DatasetFileMetaId (KEYWORD) -----------------------------------
    case("type-eq", "FileType='image'", IMAGE),
    case("type-or", "FileType='image' OR FileType='application'", IMAGE | {11}),
    case("type-not-eq-includes-missing", "NOT FileType='image'", {7, 11, 18}),
    case("type-not-has", "NOT HAS FileType", {7, 18}),
    case("ctype-eq", "ContentType='image/jpeg'", {1, 2, 4, 6, 14, 17, 19, 20}),
    case("ctype-eq-case-sensitive", "ContentType='image/JPEG'", {16}),
    case("ctype-not-eq", "NOT ContentType = 'image/png'", A - {3, 5, 12, 15}),
    case("id-eq", "DatasetFileMetaId='f05'", {5}),
    case("id-or-deleted", "DatasetFileMetaId='f01' OR DatasetFileMetaId='f09'", {1}),
    case("id-not", "NOT DatasetFileMetaId='f01'", A - {1}),
    case("id-has", "HAS DatasetFileMetaId", A),
    case("id-not-has", "NOT HAS DatasetFileMetaId", set()),
    case("id-in-list", "DatasetFileMetaId='f01' OR DatasetFileMetaId='f02' OR "
         "DatasetFileMetaId='f09' OR DatasetFileMetaId='f01'", {1, 2}),
    case("id-not-in-list", "NOT (DatasetFileMetaId='f01' OR DatasetFileMetaId='f02')",
         A - {1, 2}),
    case("id-contradiction", "DatasetFileMetaId='f01' AND DatasetFileMetaId='f02'", set()),
    case("id-and-not", "(DatasetFileMetaId='f01' OR DatasetFileMetaId='f02') AND "
         "NOT DatasetFileMetaId='f02'", {1}),
    case("id-or-has", "DatasetFileMetaId='f01' OR HAS DatasetFileMetaId", A),
    case("id-or-not-has", "DatasetFileMetaId='f01' OR NOT HAS DatasetFileMetaId", {1}),
    # Values that would break out of a badly quoted Milvus literal (a match would mean injection).
    case("id-quote-injection", "DatasetFileMetaId='f01\" or file_meta_id != \"x'", set()),
    case("id-backslash-injection", "DatasetFileMetaId='f01\\\\\" or file_meta_id != \"'",
         set()),
    case("id-newline", "DatasetFileMetaId='f01\\nx' OR DatasetFileMetaId='f0\\t2'", set()),
    # -- DataSize (NUMBER) ------------------------------------------------------------------------
    case("size-ge", "DataSize >= 12345", {1, 8, 13, 16, 20}),
    case("size-gt", "DataSize > 12345", {8, 13}),
    case("size-lt", "DataSize < 100", {5, 11, 15, 19}),
    case("size-le", "DataSize <= 1024", {4, 5, 11, 14, 15, 19}),
    case("size-eq-zero", "DataSize = 0", {5}),
    case("size-eq-float", "DataSize=2048.0", {2}),
    case("size-range", "DataSize >= 1024 AND DataSize < 4096", {2, 4, 12}),
    case("size-gt-fraction", "DataSize > 2048.5", {1, 3, 6, 8, 12, 13, 16, 17, 20}),
    case("size-gt-negative", "DataSize > -1", A - {7, 18}),
    case("size-int64-max", "DataSize = 9223372036854775807", {8}),
    case("size-exponent", "DataSize >= 1e4", {1, 8, 13, 16, 20}),
    case("size-not-ge-includes-null", "NOT DataSize >= 1024", {5, 7, 11, 14, 15, 18, 19}),
    case("size-not-gt-zero", "NOT (DataSize > 0)", {5, 7, 18}),
    case("size-has", "HAS DataSize", A - {7, 18}),
    case("size-not-has", "NOT HAS DataSize", {7, 18}),
    case("size-or", "DataSize = 0 OR DataSize = 1", {5, 11}),
    case("size-contradiction", "DataSize > 5 AND DataSize < 5", set()),
    # -- dates ------------------------------------------------------------------------------------
    case("fut-gt", "FileUpdateTime > '2025-05-01T00:00:00Z'", {3, 8, 17}),
    case("fut-ge", "FileUpdateTime >= '2025-05-01T00:00:00Z'", {3, 8, 15, 17}),
    case("fut-lt-ms", "FileUpdateTime < '2025-01-16T11:52:56.001Z'", {5, 11}),
    case("fut-le-ms", "FileUpdateTime <= '2025-01-16T11:52:56.001Z'", {5, 11, 12}),
    case("fut-date-only", "FileUpdateTime < '2025-01-01'", {5}),
    case("fut-offset", "FileUpdateTime >= '2025-03-15T00:00:00+08:00'", {2, 3, 6, 8, 14, 15, 17}),
    case("fut-naive-is-utc", "FileUpdateTime > '2025-03-14T16:00:00'", {2, 3, 8, 14, 15, 17}),
    case("fut-no-seconds", "FileUpdateTime >= '2025-06-01T00:00Z'", {8}),
    case("fut-window-exclusive", "FileUpdateTime > '2025-02-28T00:00:00Z' AND "
         "FileUpdateTime < '2025-05-30T09:27:29Z'", {1, 2, 6, 14, 15, 16, 17, 19, 20}),
    case("fut-window-inclusive", "FileUpdateTime >= '2025-02-28T00:00:00.000Z' AND "
         "FileUpdateTime <= '2025-05-30T09:27:29.000Z'", {1, 2, 3, 4, 6, 14, 15, 16, 17, 19, 20}),
    case("fut-not-includes-null", "NOT FileUpdateTime > '2025-03-01T00:00:00Z'",
         {4, 5, 7, 11, 12, 13, 18}),
    case("fut-not-has", "NOT HAS FileUpdateTime", {7, 18}),
    case("fct-ge", "FileCreateTime >= '2025-03-01T00:00:00Z'", {1, 2, 16, 20}),
    case("fct-has", "HAS FileCreateTime", {1, 2, 4, 5, 16, 20}),
    case("sync-gt", "SyncTime > '2025-02-28T00:00:00Z'", {1, 2, 4}),
    case("sync-gt-ms", "SyncTime > '2025-02-28T00:00:00.500Z'", {1, 2}),
    case("tag-time-lt", "TagUpdateTime < '2025-03-01T00:00:00Z'", {12}),
    case("tag-time-le", "TagUpdateTime <= '2025-03-01T00:00:00Z'", {4, 12}),
    case("tag-time-not-has", "NOT HAS TagUpdateTime", A - {1, 2, 3, 4, 6, 12}),
    case("index-time-ge", "SemanticIndexUpdateTime >= '2025-03-01T00:00:00Z'", {1, 2, 4, 6, 8}),
    case("index-time-not-ge", "NOT SemanticIndexUpdateTime >= '2025-03-01'", A - {1, 2, 4, 6, 8}),
    # -- SemanticIndexJobId -----------------------------------------------------------------------
    case("sij-has", "HAS SemanticIndexJobId", HAS_SIJ),
    case("sij-not-has", "NOT HAS SemanticIndexJobId", {3, 5, 7, 11, 14, 15, 17, 18}),
    case("sij-eq", "SemanticIndexJobId='dsjob-1'", {1, 2, 19, 20}),
    case("sij-eq-empty-string", "SemanticIndexJobId=''", {13}),
    case("sij-not-not-has", "NOT NOT HAS SemanticIndexJobId", HAS_SIJ),
    # -- tags -------------------------------------------------------------------------------------
    case("tag-all", "Tags.all='lane line'", {1, 2, 16, 17, 19, 20}),
    case("tag-ai", "Tags.ai='lane line'", {1, 2, 3, 17, 20}),
    case("tag-user", "Tags.user='lane line'", {16, 19}),
    case("tag-all-hides-deleted-ai", "Tags.all='sunny day'", {1}),
    case("tag-ai-keeps-deleted", "Tags.ai='sunny day'", {1, 13}),
    # f09 deleted the AI tag 'water horse' and added it by hand: (ai ∪ user) − deleted hides it.
    case("tag-all-user-readded-stays-hidden", "Status='DELETED' AND Tags.all='water horse'",
         set()),
    case("tag-user-readded", "Status='DELETED' AND Tags.user='water horse'", {9}),
    case("tag-all-readded-empties-all", "Status='DELETED' AND HAS Tags.all", {10}),
    case("tag-eq-case-sensitive", "Tags.all='Lane line'", {6}),
    case("tag-all-both", "Tags.all='lane line' AND Tags.all='barrier gate'", {1, 2, 19, 20}),
    case("tag-all-either", "Tags.all='lane line' OR Tags.all='barrier gate'",
         {1, 2, 3, 16, 17, 19, 20}),
    case("tag-not-user", "NOT Tags.user='rainy days'", A - {1, 4, 15, 20}),
    case("tag-has-ai", "HAS Tags.ai", A - {5, 7, 11, 18, 19}),
    case("tag-has-user", "HAS Tags.user", {1, 3, 4, 8, 11, 12, 14, 15, 16, 19, 20}),
    case("tag-has-all", "HAS Tags.all", A - {5, 7, 18}),
    case("tag-not-has-all", "NOT HAS Tags.all", {5, 7, 18}),
    case("tag-not-has-user", "NOT HAS Tags.user", {2, 5, 6, 7, 13, 17, 18}),
    case("tag-cjk", "Tags.all='车道线'", {6}),
    case("tag-emoji", "Tags.ai='🚗'", {15}),
    case("tag-percent", "Tags.all='50% off'", {8}),
    case("tag-underscore", "Tags.user='a_b'", {8}),
    case("tag-accent-user", "Tags.all='École'", {14}),
    case("tag-accent-ai-only", "Tags.ai='École'", set()),
    case("tag-case-variant", "Tags.all='Cat'", {12}),
    case("tag-not-either", "NOT (Tags.all='lane line' OR Tags.all='barrier gate')",
         A - {1, 2, 3, 16, 17, 19, 20}),
    case("tag-group-any-case", "tags.USER='a_b'", {8}),
    # -- logic and precedence -------------------------------------------------------------------
    # Each binding gives other ids: (toyota OR honda) AND DataSize < 5000 would be {2}.
    case("prec-and-over-or", "FileName='toyota.jpg' OR FileName='honda.jpg' AND DataSize < 5000",
         {1, 2, 20}),
    # honda AND (DataSize > 5000 OR toyota) would be nothing.
    case("prec-and-over-or-left", "FileName='honda.jpg' AND DataSize > 5000 OR "
         "FileName='toyota.jpg'", {1, 20}),
    case("prec-parens", "(FileName='toyota.jpg' OR FileName='honda.jpg') AND DataSize < 5000", {2}),
    case("prec-not-over-and", "NOT FileType='image' AND HAS DataSize", {11}),
    case("not-group", "NOT (FileType='image' AND HAS DataSize)", {7, 11, 18}),
    case("not-group-no-space", "NOT(FileName='cat.png')", A - {12}),
    case("not-or-with-missing", "NOT (DataSize > 100000 OR FileType='video')", A - {8}),
    case("not-not", "NOT NOT FileName='toyota.jpg'", {1, 20}),
    case("nested-or-and", "(Tags.all='rainy days' OR Tags.all='cat') AND "
         "(FileType='image' OR NOT HAS FileType)", {1, 4, 12, 15, 20}),
    case("or-three", "FileName='mystery' OR FileDir='' OR DataSize = 0", {5, 11, 18}),
    case("deep-parens-are-flat", "(" * 100 + "FileName='cat.png'" + ")" * 100, {12}),
    case("whitespace-anywhere", "  FileName   =   \"cat.png\"  ", {12}),
    case("newlines-and-tabs", "FileName='cat.png'\n\tAND\tDataSize=2049", {12}),
    case("ideographic-space", "FileName='cat.png'\u3000AND DataSize=2049", {12}),
    case("mixed-and-or-not", "(HAS Tags.user AND NOT HAS Tags.ai) OR (DataSize=0 AND "
         "NOT HAS Tags.all)", {5, 11, 19}),
    case("double-negation-of-missing", "NOT (NOT FileType='image')", IMAGE),
    # -- MetaAttributes (mmdm) ------------------------------------------------------------------
    case("meta-eq-number", "MetaAttributes.ImageWidth = 800", {1, 5, 15}),
    case("meta-eq-string", "MetaAttributes.ImageWidth = '800'", {4}),
    case("meta-gt", "MetaAttributes.ImageWidth > 799", {1, 2, 5, 15}),
    case("meta-le", "MetaAttributes.ImageWidth <= 0", {14, 17}),
    case("meta-not-gt", "NOT MetaAttributes.ImageWidth > 799", A - {1, 2, 5, 15}),
    case("meta-has", "HAS MetaAttributes.ImageWidth", {1, 2, 4, 5, 14, 15, 17}),
    case("meta-not-has", "NOT HAS MetaAttributes.ImageWidth", A - {1, 2, 4, 5, 14, 15, 17}),
    case("meta-nested-ge", "MetaAttributes.Image.Width >= 1000", {2}),
    case("meta-nested-eq", "MetaAttributes.Image.Width = 640", {12}),
    case("meta-nested-has", "HAS MetaAttributes.Image.Width", {2, 12}),
    case("meta-has-object-or-string", "HAS MetaAttributes.Image", {2, 12, 13}),
    case("meta-json-null-is-missing", "HAS MetaAttributes.n", set()),
    case("meta-bool-has", "HAS MetaAttributes.flag", {8}),
    case("meta-bool-is-not-number", "MetaAttributes.flag = 1", set()),
    case("meta-negative-float", "MetaAttributes.Score < -1", {6}),
    case("meta-eq-float", "MetaAttributes.Score = -1.5", {6}),
    case("meta-keys-case-sensitive", "MetaAttributes.imagewidth = 800", set()),
    case("meta-prefix-any-case", "metaattributes.ImageWidth = 800", {1, 5, 15}),
    case("meta-string-vs-object", "MetaAttributes.Image = 'n/a'", {13}),
    case("meta-int", "MetaAttributes.pages >= 12", {11}),
    # -- Description (mmdm TEXT) ----------------------------------------------------------------
    case("desc-match", "Description:'blue car'", {1, 3}),
    case("desc-match-upper", "Description:'BLUE'", {1, 3}),
    case("desc-eq", "Description='blue car, parked'", {3}),
    case("desc-has-includes-empty", "HAS Description", {1, 3, 4, 5, 6, 7, 8, 14, 19}),
    case("desc-match-empty-term", "Description:''", {1, 3, 4, 5, 6, 7, 8, 14, 19}),
    case("desc-eq-empty", "Description=''", {5}),
    case("desc-not-match", "NOT Description:'car'", A - {1, 3}),
    case("desc-quotes", "Description:'\"hi\"'", {4}),
    case("desc-sharp-s", "Description:'STRASSE'", {7}),
    case("desc-percent", "Description:'100%'", {8}),
    case("desc-wildcards-literal", "Description:'_b%'", {19}),
    case("desc-cjk", "Description:'检测'", {6}),
    # -- Status scope -----------------------------------------------------------------------------
    case("status-deleted", "Status='DELETED'", {9, 10}),
    case("status-all", "Status='ALL' AND FileName:'toyota'", {1, 10, 20}),
    case("status-active-explicit", "FileName:'toyota' AND Status='ACTIVE'", {1, 20}),
    case("status-value-any-case", "status='deleted'", {9, 10}),
    case("status-deleted-filter", "Status='DELETED' AND Tags.all='lane line'", {10}),
    case("status-all-has", "Status='ALL' AND HAS SemanticIndexJobId", HAS_SIJ | {9, 10}),
    # -- options are lifted out of the filter ---------------------------------------------------
    case("opt-topk", "FileName:'toyota' AND TopK=5", {1, 20}),
    case("opt-only", "TopK=100", A),
    case("opt-every-option", "Content:'car' AND TopK=10 AND ScoreThreshold=0.5 AND "
         "QueryType='MIX' AND SortBy='FileUpdateTime' AND Order='ASC' AND MaxResults=10 AND "
         "NextToken='abc' AND ThumbnailMode='w_100' AND SignMode='PUBLIC' AND "
         "FileType='video' AND Status='ALL'", {9}),
    case("opt-in-parenthesised-and", "(FileName:'toyota' OR FileDir:'nowhere') AND "
         "(TopK=5 AND FileType='image')", {1, 20}),
    case("empty-query", "", A),
    case("blank-query", " \n\t ", A),
    case("content-only", "Content:'a fallen water horse'", A),
    # -- syntax errors --------------------------------------------------------------------------
    err("err-eof-after-op", "FileName=", "unexpected-eof", span=(9, 9)),
    err("err-eof-after-and", "FileName='a' AND", "unexpected-eof", span=(16, 16)),
    err("err-unclosed-paren", "(FileName='a'", "unexpected-eof", span=(13, 13)),
    err("err-extra-close-paren", "FileName='a')", "unexpected-token", at=")"),
    err("err-missing-op", "FileName 'a'", "unexpected-token", at="'a'"),
    err("err-missing-value", "FileName = AND", "unexpected-token", at="AND"),
    err("err-double-op", "DataSize >= = 5", "unexpected-token", span=(12, 13)),
    err("err-bad-character", "FileName='a' & FileDir='b'", "bad-character", at="&"),
    err("err-unterminated", "FileName='abc", "unterminated-string", at="'abc"),
    err("err-unterminated-double", 'FileName="abc', "unterminated-string", at='"abc'),
    err("err-bad-escape", "FileName='a\\qb'", "bad-escape", at="\\q"),
    err("err-implicit-and", "FileName='a' FileDir='b'", "unexpected-token", at="FileDir"),
    err("err-empty-parens", "()", "unexpected-token", at=")"),
    err("err-lone-not", "NOT", "unexpected-eof", span=(3, 3)),
    err("err-has-with-value", "HAS FileName='a'", "unexpected-token", at="="),
    err("err-two-values", "FileName='a' 'b'", "unexpected-token", at="'b'"),
    err("err-keyword-as-attr", "AND='x'", "unexpected-token", at="AND"),
    err("err-number-as-attr", "5=5", "unexpected-token", span=(0, 1)),
    err("err-unknown-operator-word", "FileName='a' XOR FileDir='b'", "unexpected-token",
        at="XOR"),
    err("err-bang-equals", "FileName!='a'", "bad-character", at="!"),
    err("err-too-deep", DEEP_NOT, "too-deep", span=(256, len(DEEP_NOT))),
    # -- semantic errors ------------------------------------------------------------------------
    err("err-unknown-attr", "FileNme='x'", "unknown-attribute", at="FileNme"),
    err("err-unknown-attr-in-has", "HAS SemanticIndexJob", "unknown-attribute",
        at="SemanticIndexJob"),
    err("err-unknown-attr-unicode", "文件名='x'", "unknown-attribute", at="文件名"),
    err("err-bare-tags", "Tags='x'", "unknown-attribute", at="Tags"),
    err("err-eq-on-date", "FileUpdateTime='2025-01-01T00:00:00Z'", "op-not-allowed",
        at="FileUpdateTime='2025-01-01T00:00:00Z'"),
    err("err-range-on-text", "FileName>'a'", "op-not-allowed", at="FileName>'a'"),
    err("err-range-on-keyword", "FileType>='a'", "op-not-allowed", at="FileType>='a'"),
    err("err-match-on-keyword", "FileType='image' AND ContentType:'image/png'", "op-not-allowed",
        at="ContentType:'image/png'"),
    err("err-match-on-number", "DataSize:5", "op-not-allowed", at="DataSize:5"),
    err("err-match-on-date", "FileUpdateTime:'2025'", "op-not-allowed", at="FileUpdateTime:'2025'"),
    err("err-match-on-tags", "Tags.all:'lane'", "op-not-allowed", at="Tags.all:'lane'"),
    err("err-range-on-tags", "Tags.all>'a'", "op-not-allowed", at="Tags.all>'a'"),
    err("err-match-on-meta", "MetaAttributes.x:'a'", "op-not-allowed", at="MetaAttributes.x:'a'"),
    err("err-status-under-or", "Status='ACTIVE' OR FileName='a'", "top-level-only",
        at="Status='ACTIVE'"),
    err("err-status-negated", "NOT Status='ACTIVE'", "top-level-only", at="Status='ACTIVE'"),
    err("err-status-has", "HAS Status", "op-not-allowed", at="HAS Status"),
    err("err-status-not-has", "NOT HAS Status", "op-not-allowed", at="HAS Status"),
    err("err-status-value", "Status='GONE'", "bad-value", at="'GONE'"),
    err("err-content-negated", "NOT Content:'x'", "top-level-only", at="Content:'x'"),
    err("err-content-under-or", "Content:'x' OR FileName='a'", "top-level-only",
        at="Content:'x'"),
    err("err-content-eq", "Content='x'", "op-not-allowed", at="Content='x'"),
    err("err-topk-under-or", "FileName='a' OR TopK=5", "top-level-only", at="TopK=5"),
    err("err-topk-in-nested-group", "FileName='a' AND (FileDir='b' OR (TopK=5 AND DataSize=1))",
        "top-level-only", at="TopK=5"),
    err("err-has-topk", "HAS TopK", "op-not-allowed", at="HAS TopK"),
    err("err-topk-zero", "TopK=0", "bad-value", at="0"),
    err("err-topk-too-big", "TopK=5001", "bad-value", at="5001"),
    err("err-topk-float", "TopK=1.5", "type-mismatch", at="1.5"),
    err("err-topk-string", "TopK='5'", "type-mismatch", at="'5'"),
    err("err-maxresults-too-big", "MaxResults=101", "bad-value", at="101"),
    err("err-order-value", "Order='UP'", "bad-value", at="'UP'"),
    err("err-sortby-value", "SortBy='DataSize'", "bad-value", at="'DataSize'"),
    err("err-querytype-value", "QueryType='FUZZY'", "bad-value", at="'FUZZY'"),
    err("err-thumbnail-value", "ThumbnailMode='big'", "bad-value", at="'big'"),
    err("err-signmode-value", "SignMode='PRIVATE'", "bad-value", at="'PRIVATE'"),
    err("err-duplicate-option", "TopK=1 AND FileName='a' AND TopK=2", "duplicate-option",
        at="TopK=2"),
    err("err-duplicate-status", "Status='ALL' AND Status='DELETED'", "duplicate-option",
        at="Status='DELETED'"),
    err("err-date-number", "FileUpdateTime>5", "bad-date", at="5"),
    err("err-date-words", "FileUpdateTime>'yesterday'", "bad-date", at="'yesterday'"),
    err("err-date-month-13", "FileUpdateTime>'2025-13-01'", "bad-date", at="'2025-13-01'"),
    err("err-date-microseconds", "FileUpdateTime>'2025-01-01T00:00:00.000001Z'", "bad-date",
        at="'2025-01-01T00:00:00.000001Z'"),
    err("err-number-quoted", "DataSize>='5'", "type-mismatch", at="'5'"),
    err("err-string-unquoted-number", "FileName=5", "type-mismatch", at="5"),
    err("err-number-too-big", "DataSize>99999999999999999999", "bad-value",
        at="99999999999999999999"),
    err("err-float-overflow", "DataSize>1e999", "bad-value", at="1e999"),
    err("err-not-queryable-group", "Tags.user-delete-ai-tags='x'", "not-queryable",
        at="Tags.user-delete-ai-tags"),
    err("err-not-queryable-comment", "Comment:'x'", "not-queryable", at="Comment"),
    err("err-meta-without-key", "HAS MetaAttributes", "bad-meta-key", at="MetaAttributes"),
    err("err-meta-bad-key", "MetaAttributes.a-b=1", "bad-meta-key", at="MetaAttributes.a-b"),
    err("err-meta-range-string", "MetaAttributes.ImageWidth>'5'", "type-mismatch", at="'5'"),
]

# What a vector store's index table can express (query/compile/vector.py): these cases run on
# the vector backends, and every other valid case must be refused there (test_semantics.py).
VECTOR_CASES = frozenset({
    "id-eq", "id-or-deleted", "id-not", "id-has", "id-not-has", "id-in-list", "id-not-in-list",
    "id-contradiction", "id-and-not", "id-or-has", "id-or-not-has", "id-quote-injection",
    "id-backslash-injection", "id-newline", "opt-only", "empty-query", "blank-query",
    "content-only",
})

VALID = [c for c in CASES if c.error is None]
ERRORS = [c for c in CASES if c.error is not None]
assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
