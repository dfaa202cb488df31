"""Storage: the schema, one module of queries per aggregate, and the `Store` that owns the
engine, its transactions and locks."""
