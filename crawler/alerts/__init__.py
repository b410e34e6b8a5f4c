"""Alerts: saved searches whose new matches the daemon delivers (Atom feed, webhook, e-mail).

config.py reads `[[alert]]` entries of the outlet config; service.py is what the daemon's
archive writer runs (enqueue after an ingest, deliver between write sessions); channels.py
sends; cli.py is `mediawatch alerts`. The SQL is in archive/alerts.py. Kept free of imports
here: `mediawatch status` must not pay for what `mediawatch run` needs.
"""
