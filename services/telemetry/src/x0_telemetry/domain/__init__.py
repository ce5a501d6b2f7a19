"""Pure telemetry logic: event checks, derived status, history plans, the series cap.

Nothing here imports a framework, database or cache client.
"""
