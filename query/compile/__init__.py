"""Compilers from a bound query to backend queries (SQL now; Milvus and Elasticsearch later)."""
