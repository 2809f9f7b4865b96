"""The `switchboard loadgen` options, and the settings they make.

Kept apart from the rest of the package so that building the CLI parser does not import
rich or the HTTP client.
"""

from __future__ import annotations

import argparse

import msgspec

STRATEGIES = ("cost", "latency", "throughput", "balanced")
DEFAULT_DURATION_S = 30.0


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    url: str = "http://127.0.0.1:8080"
    model: str = "demo-llama"
    concurrency: int = 8
    duration_s: float | None = DEFAULT_DURATION_S  # None: until `requests` are answered
    requests: int | None = None
    strategy: str | None = None  # None: the gateway's default
    stream: bool = False
    api_key: str | None = None
    max_tokens: int | None = None
    prompt: str = "Say hello in one short sentence."
    live: bool = True


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Settings()
    parser.add_argument("--url", default=defaults.url, help="gateway (default: %(default)s)")
    parser.add_argument(
        "--model", default=defaults.model, help="the model to ask for (default: %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=defaults.concurrency,
        help="requests in flight at once (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        help=f"seconds to send for (default: {DEFAULT_DURATION_S:g}, or none with --requests)",
    )
    parser.add_argument("--requests", type=_positive_int, help="send this many requests, then stop")
    parser.add_argument(
        "--strategy", choices=STRATEGIES, help="sent as routing.strategy (default: the gateway's)"
    )
    parser.add_argument("--stream", action="store_true", help="stream the answers (SSE)")
    parser.add_argument("--api-key", help="gateway key, sent as a Bearer token")
    parser.add_argument("--max-tokens", type=_positive_int, help="max_tokens for each request")
    parser.add_argument("--prompt", default=defaults.prompt, help="the user message")
    parser.add_argument(
        "--no-live",
        dest="live",
        action="store_false",
        help="no live view, only the final summary (also when stdout is not a terminal)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    duration = args.duration
    if duration is None and args.requests is None:
        duration = DEFAULT_DURATION_S
    return Settings(
        url=args.url.rstrip("/"),
        model=args.model,
        concurrency=args.concurrency,
        duration_s=duration,
        requests=args.requests,
        strategy=args.strategy,
        stream=args.stream,
        api_key=args.api_key,
        max_tokens=args.max_tokens,
        prompt=args.prompt,
        live=args.live,
    )
