"""Compilers from a bound query to backend queries: SQL (sqlglot), Milvus expressions and
Elasticsearch filters (the last two over PAI's index-table fields only)."""
