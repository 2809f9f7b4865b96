"""botocore is an optional dependency: only a configured bedrock provider needs it."""

from __future__ import annotations

import importlib

# the botocore modules the adapter uses; importing them is the real test of the extra
_MODULES = ("botocore.auth", "botocore.awsrequest", "botocore.credentials", "botocore.eventstream")


class BedrockExtraMissing(ValueError):
    """A bedrock provider is configured but botocore is not installed.

    A ValueError so that msgspec reports it, like any other bad config field, as a
    config error naming the provider (`providers.<name>: …`)."""


def require_botocore() -> None:
    try:
        for module in _MODULES:
            importlib.import_module(module)
    except ImportError:
        raise BedrockExtraMissing(
            "kind 'bedrock' needs botocore for AWS request signing: "
            "install it with pip install 'switchboard[bedrock]'"
        ) from None
