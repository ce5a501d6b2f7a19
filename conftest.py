"""Shared by every test in the workspace: the real-services fixtures."""

pytest_plugins = ["x0_common.testing.stack"]
