"""Simulated legacy completions (`text_completion`), with the provider's timing: each
prompt gets `n` choices of the provider's text, cut by `max_tokens` (16 when unset, as
OpenAI's default), the prompt in front with `echo`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

import msgspec

from providers.base import ProviderResponse, StreamChunk
from providers.chat_types import Usage
from providers.completion_types import CompletionRequest, TextChoice, TextCompletion
from providers.completions import CompletionsAPI, TextCompletionCall
from providers.simulated.config import SimulatedConfig
from providers.simulated.text import Answer, write

_encode = msgspec.json.encode


def _usage(request: CompletionRequest, answer: Answer) -> Usage:
    prompt = request.estimated_prompt_tokens()
    choices = request.prompt_count * request.choices_per_prompt
    completion = choices * len(answer.tokens)
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


class SimulatedCompletions(CompletionsAPI):
    def __init__(
        self, config: SimulatedConfig, before_answer: Callable[[], Awaitable[None]]
    ) -> None:
        self._config = config
        self._before_answer = before_answer  # the provider's latency and failures

    def _answer(self, request: CompletionRequest) -> Answer:
        return write(self._config.text, self._config.completion_tokens, request.output_limit)

    def _echoes(self, request: CompletionRequest) -> list[str]:
        """Per prompt, what `echo` puts before the answer."""
        prompts = request.prompts() or [""] * request.prompt_count
        return prompts if request.echo is True else [""] * len(prompts)

    async def complete(self, call: TextCompletionCall) -> ProviderResponse:
        await self._before_answer()
        request = call.request
        answer = self._answer(request)
        if self._config.tokens_per_second:
            await asyncio.sleep(len(answer.tokens) / self._config.tokens_per_second)
        per_prompt = request.choices_per_prompt
        choices = [
            TextChoice(
                text=echo + answer.text,
                index=prompt * per_prompt + i,
                finish_reason=answer.finish_reason,
            )
            for prompt, echo in enumerate(self._echoes(request))
            for i in range(per_prompt)
        ]
        usage = _usage(request, answer)
        body = TextCompletion(
            id=f"cmpl-sim-{call.request_id}",
            created=int(time.time()),
            model=call.model,
            system_fingerprint=None,
            choices=choices,
            usage=usage,
        )
        return ProviderResponse(body=_encode(body), usage=usage)

    async def stream(self, call: TextCompletionCall) -> AsyncGenerator[StreamChunk, None]:
        await self._before_answer()
        request = call.request
        answer = self._answer(request)
        chunk_id, created = f"cmpl-sim-{call.request_id}", int(time.time())

        def chunk(index: int, text: str, finish_reason: str | None = None) -> bytes:
            choice = TextChoice(text=text, index=index, finish_reason=finish_reason)
            return _encode(
                TextCompletion(id=chunk_id, created=created, model=call.model, choices=[choice])
            )

        interval = 1 / self._config.tokens_per_second if self._config.tokens_per_second else 0.0
        per_prompt = request.choices_per_prompt
        for prompt, echo in enumerate(self._echoes(request)):
            for i in range(per_prompt):
                index = prompt * per_prompt + i
                if echo:
                    yield StreamChunk(data=chunk(index, echo), has_output=True)
                for token in answer.tokens:
                    if interval:
                        await asyncio.sleep(interval)
                    yield StreamChunk(data=chunk(index, token), has_output=True)
                yield StreamChunk(data=chunk(index, "", answer.finish_reason))
        usage = _usage(request, answer)
        closing = TextCompletion(
            id=chunk_id, created=created, model=call.model, choices=[], usage=usage
        )
        yield StreamChunk(data=_encode(closing), usage=usage, usage_only=True)
