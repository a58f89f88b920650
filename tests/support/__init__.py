"""Test support code shared by the test suites: real components started on loopback."""
