"""OpenAI Responses API answers for the mock upstream, in OpenAI's documented shapes.

`response_object()` is a whole Response (as `POST /v1/responses` answers without
`stream`); `response_events()` the SSE frames of the same answer streamed, in the order
and shapes of OpenAI's streaming events reference (tests/fixtures/responses/README.md).
The mock upstream answers `POST …/responses` with these unless a test scripts otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from tests.mock_upstream import DEFAULT_MODEL, DEFAULT_PIECES, DEFAULT_TEXT, JSONReply, SSEReply

DEFAULT_RESPONSE_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
MESSAGE_ID = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
CREATED_AT = 1741476542


def responses_usage(
    input_tokens: int = 10, output_tokens: int = len(DEFAULT_PIECES)
) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(text: str = DEFAULT_TEXT, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": MESSAGE_ID,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def function_call_item(
    name: str, arguments: str, call_id: str = "call_12345xyz", status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "fc_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795c",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def response_object(
    *,
    output: list[dict[str, Any]] | None = None,
    model: str = DEFAULT_MODEL,
    status: str = "completed",
    usage: dict[str, Any] | None = None,
    response_id: str = DEFAULT_RESPONSE_ID,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": CREATED_AT,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": model,
        "output": [message_item()] if output is None else output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage if usage is not None or status == "in_progress" else responses_usage(),
        "user": None,
        "metadata": {},
    }


def frame(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


def response_events(
    *,
    pieces: list[str] = DEFAULT_PIECES,
    model: str = DEFAULT_MODEL,
    usage: dict[str, Any] | None = None,
    response_id: str = DEFAULT_RESPONSE_ID,
) -> list[str | bytes | dict[str, Any]]:
    """A streamed text answer: created, in_progress, the message item and its part
    opened, one delta per piece, the part and item closed, completed."""
    opened = response_object(model=model, status="in_progress", output=[], response_id=response_id)
    text = "".join(pieces)
    part = {"type": "output_text", "text": text, "annotations": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opened},
        {"type": "response.in_progress", "response": opened},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**message_item(status="in_progress"), "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": MESSAGE_ID,
            "output_index": 0,
            "content_index": 0,
            "part": {**part, "text": ""},
        },
    ]
    for piece in pieces:
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": MESSAGE_ID,
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
            }
        )
    events += [
        {
            "type": "response.output_text.done",
            "item_id": MESSAGE_ID,
            "output_index": 0,
            "content_index": 0,
            "text": text,
        },
        {
            "type": "response.content_part.done",
            "item_id": MESSAGE_ID,
            "output_index": 0,
            "content_index": 0,
            "part": part,
        },
        {"type": "response.output_item.done", "output_index": 0, "item": message_item(text)},
        {
            "type": "response.completed",
            "response": response_object(
                model=model, output=[message_item(text)], usage=usage, response_id=response_id
            ),
        },
    ]
    return [frame({**event, "sequence_number": n}) for n, event in enumerate(events)]


def builtin_reply(request: Any) -> JSONReply | SSEReply:
    """What the mock answers `POST …/responses` with, unless scripted."""
    model = request.get("model") if isinstance(request, dict) else None
    model = model if isinstance(model, str) else DEFAULT_MODEL
    if isinstance(request, dict) and request.get("stream") is True:
        return SSEReply(chunks=response_events(model=model), send_done=False)
    return JSONReply(response_object(model=model))
