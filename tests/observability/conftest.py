"""The integration fixtures (operator process, quickstart app, signed image, filing and approving as
the local identities), for the dashboard's query test. NB: this makes a second session `operator`
fixture; run it in its own session until those fixtures move to tests/conftest.py."""

from tests.integration.conftest import (  # noqa: F401
    file_hotfix,
    hotfix_image,
    namespace,
    operator,
    quickstart,
    running_operator,
    signer,
    test_policy,
)
