"""A GitHub-compatible REST + git smart-HTTP server on loopback, validated against GitHub's OpenAPI."""

from .server import Exchange, LoopbackGitHub
from .spec import GitHubSpec, load_github_spec
from .validation import ApiRequest, ApiResponse, ContractValidator, Violation

__all__ = [
    "ApiRequest",
    "ApiResponse",
    "ContractValidator",
    "Exchange",
    "GitHubSpec",
    "LoopbackGitHub",
    "Violation",
    "load_github_spec",
]
