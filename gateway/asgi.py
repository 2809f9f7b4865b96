"""The ASGI entry point servers import: the app built from `SWITCHBOARD_CONFIG`."""

from __future__ import annotations

import os

from litestar import Litestar

from gateway.app import create_app
from gateway.config import EMBEDDED_CONFIG, load_config


def app_from_environment() -> Litestar:
    """`serve` sets both variables (and checked the config) before it starts a server."""
    config = load_config(os.environ.get("SWITCHBOARD_CONFIG") or EMBEDDED_CONFIG)
    workers = int(os.environ.get("SWITCHBOARD_WORKERS") or 1)
    return create_app(config, workers=workers, freeze_gc=True)
