"""Operators: one call into mmdm's job runners or query engine each, small JSON to XCom."""
