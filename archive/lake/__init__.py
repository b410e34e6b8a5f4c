"""The archive on DuckLake + PostgreSQL (issue 15): append-only lake tables with Parquet data,
unique and mutable state in plain PostgreSQL tables, the same view names as the file backend."""
