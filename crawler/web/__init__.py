"""`mediawatch serve`: a read-only web app over the archive (issue #16)."""
