"""The project's local control plane and registry, for `make cluster`, `make dev` and the tests."""
