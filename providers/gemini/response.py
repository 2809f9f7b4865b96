"""Gemini `GenerateContentResponse` → OpenAI `chat.completion` and its chunks."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

import msgspec

from providers.chat_types import (
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    CompletionTokensDetails,
    Delta,
    FunctionCall,
    PromptTokensDetails,
    ResponseMessage,
    ToolCall,
    ToolCallDelta,
    ToolCallFunctionDelta,
    Usage,
)
from providers.gemini.wire import (
    GeminiCandidate,
    GeminiFunctionCall,
    GeminiPart,
    GeminiResponse,
    GeminiUsageMetadata,
)

_encode = msgspec.json.encode

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# Gemini has no ids of its own for most calls: ours are unique across replicas and turns
# (a random per-process prefix and a counter), so a client can match results to calls
_PREFIX = os.urandom(6).hex()
_COUNTER = itertools.count(1)
ToolCallIds = Callable[[], str]


def new_tool_call_id() -> str:
    return f"call_{_PREFIX}{next(_COUNTER):x}"


def finish_reason(gemini: str | None) -> str:
    """OpenAI's finish reason; MALFORMED_FUNCTION_CALL, OTHER, LANGUAGE… read as stop."""
    return _FINISH_REASONS.get(gemini or "STOP", "stop")


def usage_of(metadata: GeminiUsageMetadata) -> Usage:
    """Thinking is output the client pays for, so it counts as completion tokens (as
    OpenAI counts reasoning tokens); tool-use prompt tokens (results of Google's own
    tools, such as search) count as prompt tokens, which keeps the total Gemini's."""
    prompt = metadata.prompt_token_count + metadata.tool_use_prompt_token_count
    completion = metadata.candidates_token_count + metadata.thoughts_token_count
    total = metadata.total_token_count
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total if total is not None else prompt + completion,
        prompt_tokens_details=PromptTokensDetails(
            cached_tokens=metadata.cached_content_token_count
        ),
        completion_tokens_details=CompletionTokensDetails(
            reasoning_tokens=metadata.thoughts_token_count
        ),
    )


def _extra_content(part: GeminiPart) -> dict[str, object] | msgspec.UnsetType:
    """The thought signature Gemini needs back with this call, in the place Google's own
    OpenAI-compatible endpoint puts it (clients echo `extra_content` with the call)."""
    if part.thought_signature is None:
        return msgspec.UNSET
    return {"google": {"thought_signature": part.thought_signature}}


def _arguments(call: GeminiFunctionCall) -> str:
    return _encode(call.args or {}).decode()


def _parts(candidate: GeminiCandidate) -> list[GeminiPart]:
    return candidate.content.parts if candidate.content is not None else []


def _text(parts: list[GeminiPart], *, thought: bool) -> str | None:
    texts = [
        part.text
        for part in parts
        if part.text is not None and bool(part.thought) is thought and part.function_call is None
    ]
    return "".join(texts) if texts else None


def _choice(candidate: GeminiCandidate, position: int, new_id: ToolCallIds) -> Choice:
    parts = _parts(candidate)
    tool_calls = [
        ToolCall(
            id=new_id(),
            function=FunctionCall(
                name=part.function_call.name, arguments=_arguments(part.function_call)
            ),
            extra_content=_extra_content(part),
        )
        for part in parts
        if part.function_call is not None
    ]
    reasoning = _text(parts, thought=True)
    message = ResponseMessage(
        content=_text(parts, thought=False),
        tool_calls=tool_calls or msgspec.UNSET,
        reasoning_content=reasoning if reasoning is not None else msgspec.UNSET,
    )
    return Choice(
        index=candidate.index if candidate.index is not None else position,
        message=message,
        finish_reason="tool_calls" if tool_calls else finish_reason(candidate.finish_reason),
    )


def chat_response(
    response: GeminiResponse,
    *,
    fallback_id: str,
    model: str,
    created: int,
    new_id: ToolCallIds = new_tool_call_id,
) -> ChatResponse:
    choices = [_choice(c, position, new_id) for position, c in enumerate(response.candidates)]
    if not choices:
        # the prompt itself was blocked (`promptFeedback.blockReason`): an answer with
        # nothing in it, as OpenAI reports its own content filter
        choices = [Choice(index=0, message=ResponseMessage(), finish_reason="content_filter")]
    return ChatResponse(
        id=response.response_id or fallback_id,
        created=created,
        model=response.model_version or model,
        choices=choices,
        usage=usage_of(response.usage_metadata) if response.usage_metadata else None,
        system_fingerprint=None,
    )


class _CandidateState:
    __slots__ = ("finished", "tool_calls")

    def __init__(self) -> None:
        self.tool_calls = 0  # OpenAI indexes tool calls per choice, across chunks
        self.finished = False


class StreamTranslator:
    """Turns stream fragments into OpenAI chunks. Every fragment is a whole
    `GenerateContentResponse` holding only what is new: text and thoughts arrive in
    pieces, a function call arrives whole, and `finishReason` on a candidate's last one."""

    def __init__(
        self,
        *,
        fallback_id: str,
        model: str,
        created: int,
        new_id: ToolCallIds = new_tool_call_id,
    ) -> None:
        self._id = fallback_id
        self._model = model
        self._created = created
        self._new_id = new_id
        self._started = False
        self._candidates: dict[int, _CandidateState] = {}
        self.usage: Usage | None = None

    @property
    def finished(self) -> bool:
        """Every candidate seen has its finish reason: the answer is complete."""
        return bool(self._candidates) and all(c.finished for c in self._candidates.values())

    def _chunk(self, index: int, delta: Delta, finish: str | None = None) -> ChatChunk:
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish)
        return ChatChunk(id=self._id, created=self._created, model=self._model, choices=[choice])

    def _candidate(self, index: int, out: list[tuple[ChatChunk, bool]]) -> _CandidateState:
        state = self._candidates.get(index)
        if state is None:
            state = self._candidates[index] = _CandidateState()
            out.append((self._chunk(index, Delta(role="assistant", content="")), False))
        return state

    def feed(self, fragment: GeminiResponse) -> list[tuple[ChatChunk, bool]]:
        """The chunks for one fragment, each with whether it carries generated output."""
        if not self._started:
            self._started = True
            self._id = fragment.response_id or self._id
            self._model = fragment.model_version or self._model
        if fragment.usage_metadata is not None:
            self.usage = usage_of(fragment.usage_metadata)
        out: list[tuple[ChatChunk, bool]] = []
        feedback = fragment.prompt_feedback
        if not fragment.candidates and feedback is not None and feedback.block_reason is not None:
            # the prompt itself was blocked: an empty answer, as in `chat_response`
            self._candidate(0, out).finished = True
            out.append((self._chunk(0, Delta(), "content_filter"), False))
        for position, candidate in enumerate(fragment.candidates):
            index = candidate.index if candidate.index is not None else position
            self._candidate_chunks(index, candidate, out)
        return out

    def _candidate_chunks(
        self, index: int, candidate: GeminiCandidate, out: list[tuple[ChatChunk, bool]]
    ) -> None:
        state = self._candidate(index, out)
        parts = _parts(candidate)
        reasoning, text = _text(parts, thought=True), _text(parts, thought=False)
        if reasoning or text:
            delta = Delta(
                content=text if text else msgspec.UNSET,
                reasoning_content=reasoning if reasoning else msgspec.UNSET,
            )
            out.append((self._chunk(index, delta), True))
        for part in parts:
            if part.function_call is None:
                continue
            call = ToolCallDelta(
                index=state.tool_calls,
                id=self._new_id(),
                type="function",
                function=ToolCallFunctionDelta(
                    name=part.function_call.name, arguments=_arguments(part.function_call)
                ),
                extra_content=_extra_content(part),
            )
            state.tool_calls += 1
            out.append((self._chunk(index, Delta(tool_calls=[call])), True))
        if candidate.finish_reason is not None and not state.finished:
            state.finished = True
            reason = "tool_calls" if state.tool_calls else finish_reason(candidate.finish_reason)
            out.append((self._chunk(index, Delta(), reason), False))

    def usage_chunk(self) -> ChatChunk | None:
        """The closing `choices: []` chunk with the last usage Gemini reported."""
        if self.usage is None:
            return None
        return ChatChunk(
            id=self._id, created=self._created, model=self._model, choices=[], usage=self.usage
        )
