"""Fixed upstream answers of the Responses and Messages APIs for bench/endpoints.py, in
the vendors' documented shapes (the same as tests/responses_mock.py and the Anthropic
fixtures): a whole answer and a stream of 20 text deltas, the size of chat's bench stream.

No ' or $ in them: they are pasted into nginx strings. Events are framed with `\\n` that
nginx expands in quoted strings.
"""

from __future__ import annotations

import json
from typing import Any

PIECES = [f"tok{i} " for i in range(20)]
TEXT = "".join(PIECES)
RESPONSE_ID = "resp_bench0000000000000000000000000000000000000000"
MESSAGE_ID = "msg_bench00000000000000000000000000000000000000000000"
RESPONSES_USAGE = {
    "input_tokens": 20,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 20,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 40,
}
MESSAGES_USAGE = {
    "input_tokens": 20,
    "output_tokens": 20,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _message_item(text: str, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
    return {
        "type": "message",
        "id": MESSAGE_ID,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _response(status: str, output: list[Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": "You are a terse assistant.",
        "max_output_tokens": 32,
        "model": "upstream-model",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


RESPONSE_BODY = _dumps(_response("completed", [_message_item(TEXT)], RESPONSES_USAGE))


def _frame(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\\ndata: {_dumps(event)}\\n\\n"


def response_events() -> list[str]:
    """OpenAI's order: created, in_progress, the item and its part opened, 20 deltas,
    the part and the item closed, completed."""
    where = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    opened = _response("in_progress", [], None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opened},
        {"type": "response.in_progress", "response": opened},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _message_item("", "in_progress"),
        },
        {"type": "response.content_part.added", **where, "part": part},
    ]
    events += [{"type": "response.output_text.delta", **where, "delta": p} for p in PIECES]
    events += [
        {"type": "response.output_text.done", **where, "text": TEXT},
        {"type": "response.content_part.done", **where, "part": {**part, "text": TEXT}},
        {"type": "response.output_item.done", "output_index": 0, "item": _message_item(TEXT)},
        {
            "type": "response.completed",
            "response": _response("completed", [_message_item(TEXT)], RESPONSES_USAGE),
        },
    ]
    return [_frame({**e, "sequence_number": i}) for i, e in enumerate(events)]


def _message(content: list[Any], stop: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": "upstream-model",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


MESSAGE_BODY = _dumps(_message([{"type": "text", "text": TEXT}], "end_turn", MESSAGES_USAGE))


def message_events() -> list[str]:
    """Anthropic's order: message_start, the text block (start, ping, 20 deltas, stop),
    message_delta with the usage, message_stop."""
    start_usage = {**MESSAGES_USAGE, "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": _message([], None, start_usage)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
        for p in PIECES
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 20},
        },
        {"type": "message_stop"},
    ]
    return [_frame(e) for e in events]
