"""Shared by the Bedrock tests: fixtures, converse-stream frames, and an independent
check of a request's SigV4 signature.

The frames are built here because botocore only parses them (it has no encoder).

Frame layout (AWS event-stream encoding): a 12-byte prelude — total length, headers
length (big-endian uint32 each) and the CRC32 of those 8 bytes — then the headers, the
payload, and the CRC32 of everything before it. A header is a 1-byte name length, the
name, a 1-byte value type (7: string), a 2-byte value length and the value.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "bedrock"
_STRING = 7


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    encoded = b"".join(
        struct.pack(">B", len(name)) + name + struct.pack(">BH", _STRING, len(value)) + value
        for name, value in ((k.encode(), v.encode()) for k, v in headers.items())
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    return frame(
        {
            ":event-type": event_type,
            ":content-type": "application/json",
            ":message-type": "event",
        },
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def exception_frame(exception_type: str, payload: dict[str, Any]) -> bytes:
    return frame(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def frames(events: list[dict[str, Any]]) -> bytes:
    """A fixture's `events` (`{"event": type, "payload": …}` or `{"exception": type,
    "payload": …}`) as one converse-stream body."""
    return b"".join(
        event_frame(e["event"], e["payload"])
        if "event" in e
        else exception_frame(e["exception"], e["payload"])
        for e in events
    )


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def expected_authorization(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
) -> str:
    """The Authorization header botocore computes for this request as received: same
    signed headers (values as the server got them), same timestamp, our test keys."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lowered = {k.lower(): v for k, v in headers.items()}
    signed = lowered["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    request = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={name: lowered[name] for name in signed if name in lowered},
    )
    timestamp = lowered["x-amz-date"]
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(Credentials(access_key, secret_key, token), "bedrock", region)
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{timestamp[:8]}/{region}/bedrock/"
        f"aws4_request, SignedHeaders={';'.join(signed)}, Signature={signature}"
    )
