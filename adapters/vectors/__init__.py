"""Vector stores for semantic indexes (Milvus / Milvus Lite, Elasticsearch)."""
