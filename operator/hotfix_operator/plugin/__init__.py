"""The `kubectl hotfix` plugin (console script `kubectl-hotfix`): create, approve, reject, abort,
status (--watch), list, verify and postmortems, as the caller's own identity. An entry point beside
`hotfix_operator.cli`: it talks to the API server only, never to the operator's handlers or controller."""
