"""Deployment files; a package only so that pytest can import deploy/images/tests."""
