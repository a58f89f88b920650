"""Specification tests of the GitHub + git publishing adapters, against the loopback GitHub."""
