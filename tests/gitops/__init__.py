"""Tests of the CI recipes in examples/ci/ and the pre-commit hook."""
