"""Hypothesis strategies for valid OpenAI chat completions request bodies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

text = st.text(max_size=40)
names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=6,
)
image_urls = st.sampled_from(
    [
        "https://example.com/cat.png",
        "http://example.com/a/b.jpeg",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/jpeg;base64,/9j/4AAQSkZJRg==",
        "data:image/webp;base64,UklGRg==",
    ]
)


def _part(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "text":
        return st.builds(lambda t: {"type": "text", "text": t}, text)
    if kind == "image_url":
        return st.builds(
            lambda url, detail: {"type": "image_url", "image_url": {"url": url, **detail}},
            image_urls,
            st.sampled_from([{}, {"detail": "low"}, {"detail": "high"}, {"detail": "auto"}]),
        )
    if kind == "input_audio":
        return st.builds(
            lambda fmt: {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": fmt}},
            st.sampled_from(["wav", "mp3"]),
        )
    return st.sampled_from(
        [
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
            },
            {"type": "file", "file": {"file_id": "file-abc123"}},
        ]
    )


user_parts = st.lists(
    st.sampled_from(["text", "text", "image_url", "input_audio", "file"]).flatmap(_part),
    min_size=1,
    max_size=4,
)
text_parts = st.lists(_part("text"), min_size=1, max_size=3)

tool_calls = st.lists(
    st.builds(
        lambda i, name, args: {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        },
        st.integers(0, 5),
        names,
        st.dictionaries(names, json_values, max_size=3),
    ),
    min_size=1,
    max_size=3,
)

messages = st.one_of(
    st.builds(lambda c: {"role": "system", "content": c}, text | text_parts),
    st.builds(lambda c: {"role": "developer", "content": c}, text | text_parts),
    st.builds(lambda c: {"role": "user", "content": c}, text | user_parts),
    st.builds(lambda c: {"role": "assistant", "content": c}, text),
    st.builds(
        lambda c, calls: {"role": "assistant", "content": c, "tool_calls": calls},
        st.none() | text,
        tool_calls,
    ),
    st.builds(
        lambda i, c: {"role": "tool", "tool_call_id": f"call_{i}", "content": c},
        st.integers(0, 5),
        text | text_parts,
    ),
)

schema = st.sampled_from(
    [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        {"type": "object"},
    ]
)
tools = st.lists(
    st.builds(
        lambda name, desc, params: {
            "type": "function",
            "function": {"name": name, **desc, "parameters": params},
        },
        names,
        st.sampled_from([{}, {"description": "does a thing"}]),
        schema,
    ),
    min_size=1,
    max_size=3,
    unique_by=lambda t: t["function"]["name"],
)

optional_fields = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "max_tokens": st.integers(1, 100_000),
        "max_completion_tokens": st.integers(1, 100_000),
        "stop": text | st.lists(text, max_size=4),
        "n": st.integers(1, 4),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.floats(-2, 2),
        "seed": st.integers(0, 2**31),
        "user": text,
        "logprobs": st.booleans(),
        "top_logprobs": st.integers(0, 20),
        "parallel_tool_calls": st.booleans(),
        "reasoning_effort": st.sampled_from(["low", "medium", "high"]),
        "response_format": st.one_of(
            st.just({"type": "text"}),
            st.just({"type": "json_object"}),
            st.builds(
                lambda s: {"type": "json_schema", "json_schema": {"name": "answer", "schema": s}},
                schema,
            ),
        ),
        "stream": st.booleans(),
        "metadata": st.dictionaries(names, st.text(max_size=8), max_size=2),
    },
)


@st.composite
def chat_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "m",
        "messages": draw(st.lists(messages, min_size=1, max_size=6)),
    }
    body.update(draw(optional_fields))
    if draw(st.booleans()):
        body["tools"] = draw(tools)
        body["tool_choice"] = draw(
            st.sampled_from(["auto", "none", "required"])
            | st.builds(
                lambda t: {"type": "function", "function": {"name": t[0]["function"]["name"]}},
                st.just(body["tools"]),
            )
        )
    return body
