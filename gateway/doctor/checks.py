"""Each check of `switchboard doctor`: one row of its table, never an exception."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any, Literal

import httpx
import msgspec

from gateway.config import Config
from gateway.doctor.probes import Probe, bedrock_headers, listed_models, probe_for
from providers.config import AzureConfig, BedrockConfig, ProviderConfig
from routing.store.redis_url import open_client, parse_redis_url

TIMEOUT = 10.0  # seconds for each check
Outcome = Literal["ok", "warn", "fail", "skip"]


class Row(msgspec.Struct, kw_only=True):
    subject: str  # `provider groq`, `store`
    check: str  # dns | credentials | reachable
    outcome: Outcome
    detail: str


async def check_all(config: Config) -> list[Row]:
    """Every provider's DNS and credentials, and the store, checked at once."""
    checks = [check_provider(name, provider, config) for name, provider in config.providers.items()]
    rows: list[Row] = []
    for group in await asyncio.gather(*checks, check_store(config.store)):
        rows += group
    return rows


async def check_provider(name: str, provider: ProviderConfig, config: Config) -> list[Row]:
    subject = f"provider {name}"
    probe = probe_for(provider)
    if probe is None:
        return [Row(subject=subject, check="network", outcome="skip", detail="in process")]
    resolved = await _resolve(subject, probe)
    if resolved.outcome == "fail":
        return [resolved]
    deployed = sorted(
        {d.model for m in config.models.values() for d in m.deployments if d.provider == name}
    )
    answer = await _call(subject, probe, provider, deployed)
    return [resolved, _redacted(answer, _secrets(provider))]


async def _resolve(subject: str, probe: Probe) -> Row:
    loop = asyncio.get_running_loop()
    try:
        addresses = await asyncio.wait_for(
            loop.getaddrinfo(probe.host, probe.port, type=socket.SOCK_STREAM), TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        return Row(subject=subject, check="dns", outcome="fail", detail=f"{probe.host}: {why}")
    first = addresses[0][4][0] if addresses else "?"
    return Row(subject=subject, check="dns", outcome="ok", detail=f"{probe.host} → {first}")


async def _call(subject: str, probe: Probe, provider: ProviderConfig, deployed: list[str]) -> Row:
    def row(outcome: Outcome, detail: str) -> Row:
        return Row(subject=subject, check="credentials", outcome=outcome, detail=detail)

    started = time.monotonic()
    try:
        headers = probe.headers
        if probe.sign_bedrock is not None:
            headers = await bedrock_headers(probe.sign_bedrock, probe.url)
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            reply = await client.get(probe.url, headers=headers)
    except (httpx.HTTPError, OSError, PermissionError) as exc:
        return row("fail", f"GET {_path(probe.url)}: {type(exc).__name__}: {exc}".rstrip(": "))
    except ImportError:
        return row("skip", "install the `bedrock` extra to sign AWS requests")
    ms = (time.monotonic() - started) * 1000
    where = f"GET {_path(probe.url)}: HTTP {reply.status_code} in {ms:.0f} ms"
    if reply.status_code in (401, 403):
        return row("fail", f"{where}: the key was refused: {_message(reply.content)}")
    if reply.status_code >= 300:
        return row("fail", f"{where}: {_message(reply.content)}")
    listed = listed_models(reply.content)
    if listed is None:
        return row("ok", where)
    missing = [
        m
        for m in deployed
        if m not in listed and not isinstance(provider, (AzureConfig, BedrockConfig))
    ]
    if missing:
        return row("warn", f"{where}; not in its model list: {', '.join(missing)}")
    return row("ok", f"{where}, {len(listed)} models listed")


async def check_store(url: str) -> list[Row]:
    def row(outcome: Outcome, detail: str) -> list[Row]:
        return [Row(subject="store", check="reachable", outcome=outcome, detail=detail)]

    if url.startswith("memory://"):
        return row("ok", "memory:// (inside each process: nothing shared between replicas)")
    try:
        target = parse_redis_url(url)
    except ValueError as exc:
        return row("fail", str(exc))
    patient = msgspec.structs.replace(target, socket_timeout=3.0, socket_connect_timeout=3.0)
    client = open_client(patient)
    key = f"switchboard:doctor:{socket.gethostname()}:{os.getpid()}"
    try:
        await client.redis.ping()
        await client.redis.set(key, b"1", px=10_000)  # a replica or a full Redis refuses
        await client.redis.delete(key)
        info: Any = await client.redis.info("server")
    except Exception as exc:  # the client raises redis, OS and cluster errors alike
        return row("fail", f"{target.mode}: {type(exc).__name__}: {exc}")
    finally:
        await client.aclose()
    version = _version(info)
    return row("ok", f"{target.mode} Redis {version}: ping, write and delete answered")


def _version(info: Any) -> str:
    if isinstance(info, dict):
        if "redis_version" in info:
            return str(info["redis_version"])
        for node in info.values():  # a cluster answers per node
            if isinstance(node, dict) and "redis_version" in node:
                return str(node["redis_version"])
    return "?"


def _path(url: str) -> str:
    return url.split("?", 1)[0]


def _message(body: bytes) -> str:
    """The upstream's error message, short."""
    try:
        document: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return body[:120].decode("utf-8", "replace").strip() or "(empty body)"
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])[:200]
    if isinstance(document, dict) and isinstance(document.get("message"), str):
        return str(document["message"])[:200]
    return str(document)[:120]


def _secrets(provider: ProviderConfig) -> list[str]:
    names = ("api_key", "secret_access_key", "session_token", "access_key_id")
    found = [getattr(provider, n, None) for n in names]
    return [s for s in found if isinstance(s, str) and s]


def _redacted(row: Row, secrets: list[str]) -> Row:
    """An upstream may echo the key it refused: it never reaches the table."""
    detail = row.detail
    for secret in secrets:
        detail = detail.replace(secret, "<redacted>")
    return msgspec.structs.replace(row, detail=detail)
