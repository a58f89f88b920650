"""The adapters' tests share the provenance tests' real-world vectors: discovery pushes them to the
local registry and must find exactly what `cosign save` wrote."""

from tests.provenance.conftest import production_root, vectors

__all__ = ["production_root", "vectors"]
