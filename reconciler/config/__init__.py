"""Desired state: configuration files, their schemas, and the resolved job specs."""
