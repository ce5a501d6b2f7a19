"""Subscribers and jobs: the events ingest, the queries, and the node gauges' refresh.

Each validates, calls the domain or an adapter, and replies (or writes); no logic.
"""
