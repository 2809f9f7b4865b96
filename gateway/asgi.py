"""The ASGI entry point servers import: the app built from `SWITCHBOARD_CONFIG`."""

from __future__ import annotations

import os

from litestar import Litestar

from gateway.app import create_app
from gateway.config import EMBEDDED_CONFIG, load_config


def app_from_environment() -> Litestar:
    return create_app(load_config(os.environ.get("SWITCHBOARD_CONFIG") or EMBEDDED_CONFIG))
