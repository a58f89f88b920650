"""hotfix-operator: emergency hotfixes shipped as a declarative, auditable Kubernetes control loop."""

API_GROUP = "hotfix.dev"
API_VERSION = "v1alpha1"
