"""hotfix-operator: emergency hotfixes shipped as a declarative, auditable Kubernetes control loop.

The API's names live in hotfix_operator.api; docs/architecture.md draws the layers."""
