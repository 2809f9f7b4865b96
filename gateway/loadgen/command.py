"""`switchboard loadgen`: send traffic, show the tallies live, print a summary at the end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import httpx
import msgspec
from rich.console import Console
from rich.live import Live

from gateway.loadgen.options import Settings, settings_from
from gateway.loadgen.scoreboard import poll_scoreboard
from gateway.loadgen.tally import Tally
from gateway.loadgen.traffic import Traffic, Unreachable, known_providers
from gateway.loadgen.view import live_view, summary

REFRESH_PER_S = 4
SUMMARY_WIDTH = 120
_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class LoadResult(msgspec.Struct, kw_only=True):
    exit_code: int
    tally: Tally | None = None  # None when the gateway could not be reached


def _client(settings: Settings, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=settings.url, limits=limits, timeout=_TIMEOUT)


async def _show_live(traffic: Traffic, tally: Tally, settings: Settings, console: Console) -> None:
    notes: dict[str, str] = {}
    # the scoreboard has its own connection, so the traffic keeps the whole pool
    async with _client(settings, 1) as side_client:
        poller = asyncio.create_task(poll_scoreboard(side_client, notes))
        # refreshed from this loop rather than rich's thread, so the tally is never read
        # while a worker writes it
        with Live(console=console, auto_refresh=False, transient=True) as live:
            sending = asyncio.create_task(traffic.run())
            try:
                while not sending.done():
                    snapshot = tally.snapshot(traffic.elapsed())
                    live.update(live_view(snapshot, settings, notes), refresh=True)
                    await asyncio.wait([sending], timeout=1 / REFRESH_PER_S)
            finally:
                poller.cancel()
                sending.cancel()
                await asyncio.gather(poller, sending, return_exceptions=True)
        sending.result()  # a bug in the sender surfaces here, after the live view closed


async def run_load(
    settings: Settings, console: Console, *, live: bool = False, handle_sigint: bool = False
) -> LoadResult:
    """Run the traffic to its end and print the summary to `console`."""
    async with _client(settings, settings.concurrency) as client:
        try:
            providers = await known_providers(client, settings.model)
        except Unreachable as exc:
            print(f"loadgen: cannot reach the gateway at {settings.url}: {exc}", file=sys.stderr)
            return LoadResult(exit_code=1)
        tally = Tally(providers)
        traffic = Traffic(settings, client, tally)
        loop = asyncio.get_running_loop()
        if handle_sigint:
            # Ctrl-C ends the run, not the program: the summary still prints
            loop.add_signal_handler(signal.SIGINT, traffic.interrupt)
        try:
            if live:
                await _show_live(traffic, tally, settings, console)
            else:
                await traffic.run()
        finally:
            if handle_sigint:
                loop.remove_signal_handler(signal.SIGINT)
    snapshot = tally.snapshot(traffic.elapsed())
    console.print(summary(snapshot, settings))
    if snapshot.succeeded:
        return LoadResult(exit_code=0, tally=tally)
    print("loadgen: no request succeeded", file=sys.stderr)
    return LoadResult(exit_code=1, tally=tally)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    console = Console()
    live = settings.live and console.is_terminal
    if not console.is_terminal:
        console = Console(width=SUMMARY_WIDTH)  # a file or a pipe: no need to squeeze to 80
    with contextlib.suppress(KeyboardInterrupt):  # a Ctrl-C before the handler is in place
        result = asyncio.run(run_load(settings, console, live=live, handle_sigint=True))
        return result.exit_code
    return 130
