"""A fake Elasticsearch 8.17 server for tests: the REST subset mmdm's vector store uses.

Routes: ``GET /`` (info), ``HEAD|PUT|DELETE /{index}``, ``GET /{index}/_mapping``,
``/_bulk`` and ``/{index}/_bulk`` (NDJSON ``index`` and ``delete``), ``/{index}/_refresh``,
``/{index}/_count`` and ``/{index}/_search`` (``knn`` with ``filter``, ``k``,
``num_candidates`` and ``similarity``; ``query`` with ``sort`` + ``search_after``; ``_source``
filtering). Queries: ``match_all``, ``match_none``, ``term``, ``terms``, ``range`` (``gt``,
``gte``, ``lt``, ``lte``; keywords compare as strings), ``ids``, ``exists`` and ``bool``
(``filter``, ``must``, ``should``, ``must_not``). Anything else answers 400 or 404, so an adapter
that strays from the modelled subset fails loudly.

What it models on purpose, because adapters get these wrong against a real server:
- writes become visible to search and count only after a refresh (``_refresh`` or a bulk
  ``?refresh=true|wait_for``);
- knn is approximate, as ES's HNSW search is (``_knn``): per shard, a filtered graph walk
  collects ``num_candidates`` matches and the best ``k`` of them come back, so a true top-``k``
  document can be missed; exact only where Lucene is exact (the filter matches at most
  ``num_candidates`` documents of the shard, or the walk would visit more than it matches).
  Scores are ES's formulas over the exact vectors, e.g. ``(1 + dot) / 2`` for ``dot_product``,
  and ``dot_product`` refuses vectors that are not unit length, in documents and queries;
- ``term``/``terms`` on a ``text`` field are refused (real ES would match analysed tokens,
  which this fake does not model), so exact filters must go to keyword fields;
- the ``compatible-with`` media type must be 7 or 8, as an 8.x server demands: elasticsearch-py
  9 sends 9 unless told otherwise, and gets 400 ``media_type_header_exception``.
Every response carries ``X-Elastic-Product: Elasticsearch`` (the client refuses servers without).
"""

from __future__ import annotations

import base64
import heapq
import json
import operator
import re
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

_COMPAT_RE = re.compile(r"compatible-with=(\d+)")
_MAX_RESULT_WINDOW = 10000
_MAX_TERMS = 65536
_UNIT_TOLERANCE = 1e-4  # ES's check on squared magnitude for dot_product
_RANGE_OPS = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_HNSW_M = 16  # ES's default index_options.m: graph neighbours per document


class EsError(Exception):
    def __init__(self, status: int, kind: str, reason: str):
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, a list of NDJSON objects for _bulk, or None


@dataclass
class FakeIndex:
    mappings: dict[str, Any]
    settings: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest writes
    visible: dict[str, dict[str, Any]] = field(default_factory=dict)  # as of the last refresh
    graphs: dict[tuple[str, int], HnswGraph] = field(default_factory=dict)  # (field, shard)

    @property
    def properties(self) -> dict[str, Any]:
        return self.mappings.setdefault("properties", {})

    @property
    def shards(self) -> int:
        nested = self.settings.get("index", {})
        return int(self.settings.get("number_of_shards", nested.get("number_of_shards", 1)))

    def refresh(self) -> None:
        """Publish the latest writes; vector graphs are rebuilt on the next search."""
        self.visible = dict(self.docs)
        self.graphs.clear()


class FakeElasticsearch:
    """``basic_auth`` makes every request need those credentials (401 otherwise);
    ``info_forbidden`` answers ``GET /`` with 403, as for a user without the cluster ``monitor``
    privilege."""

    def __init__(self, version: str = "8.17.4", *, basic_auth: tuple[str, str] | None = None,
                 info_forbidden: bool = False) -> None:
        self.version = version
        self.basic_auth = basic_auth
        self.info_forbidden = info_forbidden
        self.major = int(version.split(".")[0])
        self.indices: dict[str, FakeIndex] = {}
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._routes = [
            ("GET", re.compile(r"/"), self._info),
            ("HEAD", re.compile(r"/(?P<index>[^_/][^/]*)"), self._exists),
            ("PUT", re.compile(r"/(?P<index>[^_/][^/]*)"), self._create),
            ("DELETE", re.compile(r"/(?P<index>[^_/][^/]*)"), self._drop),
            ("GET", re.compile(r"/(?P<index>[^/]+)/_mapping"), self._mapping),
            ("PUT|POST", re.compile(r"(?:/(?P<index>[^/]+))?/_bulk"), self._bulk),
            ("GET|POST", re.compile(r"/(?P<index>[^/]+)/_refresh"), self._refresh),
            ("GET|POST", re.compile(r"/(?P<index>[^/]+)/_count"), self._count),
            ("GET|POST", re.compile(r"/(?P<index>[^/]+)/_search"), self._search),
        ]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeElasticsearch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, suffix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(suffix)]

    # --- dispatch ---------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, Any]:
        self._check_auth(request.headers)
        self._check_compat(request.headers)
        for methods, pattern, action in self._routes:
            match = pattern.fullmatch(request.path)
            if match and request.method in methods.split("|"):
                with self._lock:
                    return action(request, **{k: unquote(v) for k, v in match.groupdict().items()
                                              if v is not None})
        raise EsError(404, "fake_route_not_found",
                      f"the fake does not serve {request.method} {request.path}")

    def _check_auth(self, headers: dict[str, str]) -> None:
        if self.basic_auth is None:
            return
        token = base64.b64encode(":".join(self.basic_auth).encode()).decode()
        if headers.get("authorization") != f"Basic {token}":
            raise EsError(401, "security_exception",
                          "unable to authenticate user for REST request [/]")

    def _check_compat(self, headers: dict[str, str]) -> None:
        for name in ("accept", "content-type"):
            found = _COMPAT_RE.search(headers.get(name, ""))
            if found and int(found.group(1)) not in (self.major - 1, self.major):
                raise EsError(400, "media_type_header_exception",
                              f"Invalid media-type value on headers [Accept, Content-Type]: "
                              f"{name} version must be either version {self.major} or "
                              f"{self.major - 1}, but found {found.group(1)}")

    def _index(self, name: str) -> FakeIndex:
        if name not in self.indices:
            raise EsError(404, "index_not_found_exception", f"no such index [{name}]")
        return self.indices[name]

    # --- routes -----------------------------------------------------------------------------

    def _info(self, request: RecordedRequest) -> tuple[int, Any]:
        if self.info_forbidden:
            raise EsError(403, "security_exception",
                          "action [cluster:monitor/main] is unauthorized for user [reader]")
        return 200, {"name": "fake", "cluster_name": "fake", "cluster_uuid": "fake",
                     "version": {"number": self.version, "build_flavor": "default",
                                 "lucene_version": "9.12.0",
                                 "minimum_wire_compatibility_version": "7.17.0",
                                 "minimum_index_compatibility_version": "7.0.0"},
                     "tagline": "You Know, for Search"}

    def _exists(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        return (200 if index in self.indices else 404), None

    def _create(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        if index in self.indices:
            raise EsError(400, "resource_already_exists_exception",
                          f"index [{index}] already exists")
        body = request.body or {}
        self.indices[index] = FakeIndex(json.loads(json.dumps(body.get("mappings", {}))),
                                        body.get("settings", {}))
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}

    def _drop(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        self._index(index)
        del self.indices[index]
        return 200, {"acknowledged": True}

    def _mapping(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        return 200, {index: {"mappings": self._index(index).mappings}}

    def _refresh(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        self._index(index).refresh()
        return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}

    def _bulk(self, request: RecordedRequest, index: str | None = None) -> tuple[int, Any]:
        lines, items, touched = list(request.body or []), [], set()
        while lines:
            op, meta = next(iter(lines.pop(0).items()))
            name = meta.get("_index", index)
            doc = lines.pop(0) if op == "index" else None
            if op not in ("index", "delete"):
                raise EsError(400, "illegal_argument_exception", f"fake: bulk op {op} not modelled")
            items.append({op: self._bulk_item(op, name, meta["_id"], doc)})
            touched.add(name)
        if request.query.get("refresh") in ("", "true", "wait_for"):
            for name in touched & self.indices.keys():
                self.indices[name].refresh()
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _bulk_item(self, op: str, index: str, doc_id: str,
                   doc: dict[str, Any] | None) -> dict[str, Any]:
        head = {"_index": index, "_id": doc_id}
        idx = self.indices.get(index)
        if idx is None:
            # Real ES would auto-create the index with dynamic mappings; adapters must not rely
            # on that (the vector field would not be a dense_vector).
            err = EsError(404, "index_not_found_exception", f"no such index [{index}]")
            return {**head, "status": 404, "error": err.body()["error"]}
        if op == "delete":
            found = idx.docs.pop(doc_id, None) is not None
            return {**head, "result": "deleted" if found else "not_found",
                    "status": 200 if found else 404}
        try:
            _check_document(idx, doc or {})
        except EsError as exc:
            return {**head, "status": exc.status, "error": exc.body()["error"]}
        existed = doc_id in idx.docs
        idx.docs[doc_id] = doc or {}
        return {**head, "result": "updated" if existed else "created",
                "status": 200 if existed else 201}

    def _count(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        idx = self._index(index)
        query = (request.body or {}).get("query", {"match_all": {}})
        n = sum(1 for doc_id, doc in idx.visible.items() if _matches(idx, query, doc_id, doc))
        return 200, {"count": n, "_shards": {"total": 1, "successful": 1, "failed": 0}}

    def _search(self, request: RecordedRequest, index: str) -> tuple[int, Any]:
        idx = self._index(index)
        body = request.body or {}
        size, offset = int(body.get("size", 10)), int(body.get("from", 0))
        if size + offset > _MAX_RESULT_WINDOW:
            raise EsError(400, "illegal_argument_exception",
                          f"Result window is too large, from + size must be less than or equal "
                          f"to: [{_MAX_RESULT_WINDOW}] but was [{size + offset}]")
        if "knn" in body:
            if "query" in body or "sort" in body:
                raise EsError(400, "illegal_argument_exception",
                              "fake: knn with query or sort is not modelled")
            ranked = _knn(idx, body["knn"])
        else:
            ranked = _sorted(idx, body)
        page = ranked[offset:offset + size]
        hits = [self._hit(index, idx, doc_id, score, sort_values, body.get("_source", True))
                for doc_id, score, sort_values in page]
        out: dict[str, Any] = {"took": 1, "timed_out": False,
                               "_shards": {"total": 1, "successful": 1, "skipped": 0,
                                           "failed": 0},
                               "hits": {"max_score": max((h["_score"] for h in hits
                                                          if h["_score"] is not None),
                                                         default=None),
                                        "hits": hits}}
        if body.get("track_total_hits", True) is not False:
            out["hits"]["total"] = {"value": len(ranked), "relation": "eq"}
        return 200, out

    @staticmethod
    def _hit(index: str, idx: FakeIndex, doc_id: str, score: float | None,
             sort_values: list[Any] | None, source_filter: Any) -> dict[str, Any]:
        hit: dict[str, Any] = {"_index": index, "_id": doc_id, "_score": score}
        doc = idx.visible[doc_id]
        if source_filter is True:
            hit["_source"] = doc
        elif isinstance(source_filter, (list, str)):
            wanted = [source_filter] if isinstance(source_filter, str) else source_filter
            hit["_source"] = {k: v for k, v in doc.items() if k in wanted}
        if sort_values is not None:
            hit["sort"] = sort_values
        return hit

    # --- HTTP -------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                request = RecordedRequest(self.command, parts.path.rstrip("/") or "/", query,
                                          {k.lower(): v for k, v in self.headers.items()},
                                          _parse_body(parts.path, raw))
                fake.requests.append(request)
                try:
                    status, body = fake.handle(request)
                except EsError as exc:
                    status, body = exc.status, exc.body()
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Type",
                                 f"application/vnd.elasticsearch+json;compatible-with={fake.major}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _serve

        return Handler


def _parse_body(path: str, raw: bytes) -> Any:
    if not raw:
        return None
    if path.endswith("/_bulk"):
        return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]
    return json.loads(raw)


# --- documents and queries ------------------------------------------------------------------


def _check_document(idx: FakeIndex, doc: dict[str, Any]) -> None:
    for name, prop in idx.properties.items():
        if prop.get("type") != "dense_vector" or name not in doc:
            continue
        vector = np.asarray(doc[name], dtype=np.float32)
        dims = prop.setdefault("dims", len(vector))  # ES fixes unset dims on the first vector
        if vector.shape != (dims,):
            raise EsError(400, "document_parsing_exception",
                          f"The [dense_vector] field [{name}] in doc has a different number of "
                          f"dimensions [{vector.size}] than defined in the mapping [{dims}]")
        _check_unit(prop, vector)


def _check_unit(prop: dict[str, Any], vector: np.ndarray) -> None:
    if (prop.get("similarity", "cosine") == "dot_product"
            and abs(float(np.dot(vector, vector)) - 1.0) > _UNIT_TOLERANCE):
        raise EsError(400, "illegal_argument_exception",
                      "The [dot_product] similarity can only be used with unit-length vectors.")


def _field_value(idx: FakeIndex, path: str, doc: dict[str, Any], exact: bool) -> Any:
    """A field's value, following ``field.sub`` to a multi-field; ``exact`` demands a keyword."""
    name, _, sub = path.partition(".")
    prop = idx.properties.get(name, {})
    kind = prop.get("fields", {}).get(sub, {}).get("type") if sub else prop.get("type")
    if exact and kind == "text":
        raise EsError(400, "illegal_argument_exception",
                      f"fake: term queries on text field [{path}] are not modelled "
                      "(real ES matches analysed tokens); use a keyword field")
    if sub and kind is None:
        return None
    value = doc.get(name)
    ignore_above = (prop.get("fields", {}).get(sub, {}) if sub else prop).get("ignore_above")
    if ignore_above is not None and isinstance(value, str) and len(value) > ignore_above:
        return None  # not indexed under that field
    return value


def _matches(idx: FakeIndex, query: dict[str, Any], doc_id: str, doc: dict[str, Any]) -> bool:
    (kind, arg), = query.items()
    if kind in ("match_all", "match_none"):
        return kind == "match_all"
    if kind == "term":
        (path, value), = arg.items()
        value = value["value"] if isinstance(value, dict) else value
        return _equals(_field_value(idx, path, doc, exact=True), value)
    if kind == "terms":
        (path, values), = ((k, v) for k, v in arg.items() if k != "boost")
        if len(values) > _MAX_TERMS:
            raise EsError(400, "illegal_argument_exception",
                          f"The number of terms [{len(values)}] used in the Terms Query request "
                          f"has exceeded the allowed maximum of [{_MAX_TERMS}].")
        found = _field_value(idx, path, doc, exact=True)
        return any(v in values for v in (found if isinstance(found, list) else [found]))
    if kind == "range":
        (path, bounds), = arg.items()
        found = _field_value(idx, path, doc, exact=True)
        checks = [(_RANGE_OPS[op], bound) for op, bound in bounds.items() if op in _RANGE_OPS]
        try:
            return found is not None and all(check(found, bound) for check, bound in checks)
        except TypeError as exc:
            raise EsError(400, "parsing_exception", f"fake: [range] on [{path}]: {exc}") from exc
    if kind == "ids":
        return doc_id in arg.get("values", [])
    if kind == "exists":
        return _field_value(idx, arg["field"], doc, exact=False) is not None
    if kind == "bool":
        return _bool(idx, arg, doc_id, doc)
    raise EsError(400, "parsing_exception", f"unknown query [{kind}]")


def _bool(idx: FakeIndex, arg: dict[str, Any], doc_id: str, doc: dict[str, Any]) -> bool:
    def clauses(key: str) -> list[dict[str, Any]]:
        value = arg.get(key, [])
        return value if isinstance(value, list) else [value]

    unknown = set(arg) - {"filter", "must", "should", "must_not", "minimum_should_match", "boost"}
    if unknown:
        raise EsError(400, "parsing_exception", f"[bool] query does not support {unknown}")
    required = clauses("filter") + clauses("must")
    if not all(_matches(idx, q, doc_id, doc) for q in required):
        return False
    if any(_matches(idx, q, doc_id, doc) for q in clauses("must_not")):
        return False
    should = clauses("should")
    wanted = int(arg.get("minimum_should_match", 0 if required else 1 if should else 0))
    return sum(_matches(idx, q, doc_id, doc) for q in should) >= wanted


def _equals(found: Any, value: Any) -> bool:
    if isinstance(found, list):
        return value in found
    return found == value


def _knn(idx: FakeIndex, knn: dict[str, Any]) -> list[tuple[str, float, None]]:
    """ES's approximate knn: each shard's best ``k`` of ``num_candidates`` it collected under
    the filter (applied during the search, as ES does), merged into the best ``k``."""
    name = knn["field"]
    prop = idx.properties.get(name, {})
    if prop.get("type") != "dense_vector":
        raise EsError(400, "illegal_argument_exception",
                      f"[knn] queries are only supported on [dense_vector] fields, not [{name}]")
    k, candidates = int(knn["k"]), int(knn["num_candidates"])
    if not 1 <= k <= candidates <= _MAX_RESULT_WINDOW:
        raise EsError(400, "illegal_argument_exception",
                      f"[k] must be in 1..[num_candidates] and [num_candidates] at most "
                      f"{_MAX_RESULT_WINDOW}; got k={k}, num_candidates={candidates}")
    query = np.asarray(knn["query_vector"], dtype=np.float32)
    if query.shape != (prop.get("dims"),):
        raise EsError(400, "illegal_argument_exception",
                      f"the query vector has a different number of dimensions [{query.size}] "
                      f"than the document vectors [{prop.get('dims')}]")
    _check_unit(prop, query)
    filters = knn.get("filter", [])
    filters = filters if isinstance(filters, list) else [filters]
    kind = prop.get("similarity", "cosine")
    hits: list[tuple[str, float, None]] = []
    for shard in range(idx.shards):
        graph = _graph(idx, name, shard)
        if not graph.ids:
            continue
        accepted = np.array([all(_matches(idx, f, i, idx.visible[i]) for f in filters)
                             for i in graph.ids], dtype=bool)
        raw, scores = _similarity(kind, graph.vectors, query)
        found = _shard_search(graph, scores, accepted, candidates)
        found = sorted(found, key=lambda i: (-scores[i], i))[:k]  # ties: in doc order
        if "similarity" in knn:  # ES drops the collected hits beyond the bound, not before
            bound = np.float32(knn["similarity"])
            found = [i for i in found if (raw[i] <= bound if kind == "l2_norm"
                                          else raw[i] >= bound)]
        hits += [(graph.ids[i], float(scores[i]), None) for i in found]
    return sorted(hits, key=lambda h: -h[1])[:k]


@dataclass
class HnswGraph:
    """One shard's vectors linked as HNSW's bottom layer: each document to its ``m`` most
    similar ones and back. ``entries`` stand for the upper layers (a document reaches them with
    probability 1/m); a search enters the bottom layer at the best of them. Lucene keeps a
    graph per segment; the fake keeps one per shard, as after a force-merge."""

    ids: list[str]
    vectors: np.ndarray
    links: list[list[int]]
    entries: np.ndarray


def _graph(idx: FakeIndex, name: str, shard: int) -> HnswGraph:
    if (name, shard) not in idx.graphs:
        # ES routes by a murmur3 hash of _id; any stable hash spreads documents alike.
        ids = [i for i, doc in idx.visible.items()
               if name in doc and zlib.crc32(i.encode()) % idx.shards == shard]
        vectors = np.asarray([idx.visible[i][name] for i in ids], dtype=np.float32)
        m = int(idx.properties[name].get("index_options", {}).get("m", _HNSW_M))
        idx.graphs[(name, shard)] = _build_graph(ids, vectors.reshape(len(ids), -1), m)
    return idx.graphs[(name, shard)]


def _build_graph(ids: list[str], vectors: np.ndarray, m: int) -> HnswGraph:
    n = len(ids)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    degree = min(m, n - 1)
    links: list[set[int]] = [set() for _ in range(n)]
    for start in range(0, n if degree > 0 else 0, 1024):  # blocks keep the matrix small
        sims = unit[start:start + 1024] @ unit.T
        rows = np.arange(start, start + len(sims))
        sims[rows - start, rows] = -np.inf  # not its own neighbour
        nearest = np.argpartition(-sims, degree - 1, axis=1)[:, :degree]
        for i, row in zip(rows.tolist(), nearest.tolist()):
            links[i].update(row)
            for j in row:
                links[j].add(i)
    entries = np.random.default_rng(0).choice(n, size=max(1, n // max(m, 1)), replace=False)
    return HnswGraph(ids, vectors, [sorted(s) for s in links], entries)


def _shard_search(graph: HnswGraph, scores: np.ndarray, accepted: np.ndarray,
                  candidates: int) -> list[int]:
    """Lucene's filtered knn on one shard: an exact scan when the filter matches at most
    ``candidates`` documents or the walk would visit more than it matches; else the walk."""
    matching = np.flatnonzero(accepted).tolist()
    if len(matching) <= candidates:
        return matching
    found = _walk(graph, scores.tolist(), accepted.tolist(), candidates, len(matching) + 1)
    return matching if found is None or len(found) < candidates else found


def _walk(graph: HnswGraph, scores: list[float], accepted: list[bool], ef: int,
          visit_limit: int) -> list[int] | None:
    """HNSW's best-first search of the bottom layer (Lucene's ``searchLevel``): follow links
    from the best candidate while it can still beat the worst of the ``ef`` accepted documents
    found; documents the filter rejects are walked through but not collected. None once more
    than ``visit_limit`` documents were visited."""
    entry = int(graph.entries[np.argmax([scores[e] for e in graph.entries])])
    visited = {entry}
    frontier = [(-scores[entry], entry)]
    found: list[tuple[float, int]] = [(scores[entry], entry)] if accepted[entry] else []
    while frontier:
        negative, node = heapq.heappop(frontier)
        if len(found) >= ef and -negative < found[0][0]:
            break
        for neighbour in graph.links[node]:
            if neighbour in visited:
                continue
            visited.add(neighbour)
            if len(visited) > visit_limit:
                return None
            score = scores[neighbour]
            if len(found) < ef or score > found[0][0]:
                heapq.heappush(frontier, (-score, neighbour))
                if accepted[neighbour]:
                    heapq.heappush(found, (score, neighbour))
                    if len(found) > ef:
                        heapq.heappop(found)
    return [node for _, node in found]


def _similarity(kind: str, vectors: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, ...]:
    """(raw similarity, _score) per document, in float32 as Lucene computes them."""
    dot = (vectors @ query).astype(np.float32)
    one = np.float32(1.0)
    if kind in ("dot_product", "cosine"):
        if kind == "cosine":
            dot = dot / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
        return dot, ((one + dot) / np.float32(2.0)).astype(np.float32)
    if kind == "max_inner_product":
        return dot, np.where(dot < 0, one / (one - dot), dot + one).astype(np.float32)
    if kind == "l2_norm":
        dist = np.linalg.norm(vectors - query, axis=1).astype(np.float32)
        return dist, (one / (one + dist * dist)).astype(np.float32)
    raise EsError(400, "illegal_argument_exception", f"fake: similarity [{kind}] not modelled")


def _sorted(idx: FakeIndex, body: dict[str, Any]) -> list[tuple[str, float | None, Any]]:
    query = body.get("query", {"match_all": {}})
    docs = [(doc_id, doc) for doc_id, doc in idx.visible.items()
            if _matches(idx, query, doc_id, doc)]
    sort = body.get("sort")
    if not sort:
        return [(doc_id, 1.0, None) for doc_id, _ in docs]
    (path, order), = sort[0].items()
    order = order.get("order", "asc") if isinstance(order, dict) else order
    if len(sort) > 1 or order != "asc":
        raise EsError(400, "illegal_argument_exception", "fake: one ascending sort is modelled")
    keyed = [(_field_value(idx, path, doc, exact=True), doc_id) for doc_id, doc in docs]
    keyed = sorted((k, d) for k, d in keyed if k is not None)  # ES sorts missing last
    keyed += [(None, d) for d, doc in docs if _field_value(idx, path, doc, exact=True) is None]
    if "search_after" in body:
        after = body["search_after"][0]
        keyed = [(k, d) for k, d in keyed if k is not None and k > after]
    return [(doc_id, None, [key]) for key, doc_id in keyed]
