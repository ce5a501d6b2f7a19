"""Load tests with SLOs: Locust users that call the gateway as its real callers do.

- ``plan.py`` + ``profiles.toml``: the offered load (users and rate per caller class);
- ``locustfile.py`` + ``users/``: the callers (key exchange, RAG, mesh nodes, operators);
- ``slo.py`` + ``slo.toml``: the SLOs, checked from Locust's statistics at the end;
- ``run.py``: one run (``make load``), its report, charts and summary;
- ``ci.py``: the short form on a stack of its own (``make load-ci``);
- ``knee.py``: steps the offered load until an SLO breaks.

``docs/load.md`` says how to run them and what they measured.
"""
