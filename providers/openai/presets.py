"""OpenAI-compatible vendors as data: a new vendor is an entry here, not a class.

Each entry says where the vendor lives and how its Chat Completions endpoint differs
from OpenAI's in what it accepts; the one adapter (`providers/openai/adapter.py`) reads
the entry. Quirks come from each vendor's own documentation (pages named in
`tests/fixtures/openai_compatible/README.md`); where a vendor documents nothing, the
entry forwards the request as sent rather than guess. Model-specific limits (DeepSeek's
reasoner refusing `logprobs`, xAI's reasoning models refusing `stop`) are not vendor
quirks: they belong to the deployment's capabilities.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.capabilities import Capabilities

# which request field carries the cap on generated tokens; "as_sent" leaves the
# client's choice alone
OutputLimitField = Literal["max_tokens", "max_completion_tokens", "as_sent"]

PresetName = Literal[
    "openai",
    "groq",
    "together",
    "deepseek",
    "mistral",
    "fireworks",
    "openrouter",
    "xai",
    "perplexity",
    "vllm",
    "ollama",
]


class ForwardingProfile(msgspec.Struct, frozen=True, kw_only=True):
    """How a request body is adjusted for one OpenAI-wire upstream."""

    output_limit_field: OutputLimitField = "as_sent"
    # top-level fields the upstream refuses: dropped and named to the client
    drop_params: tuple[str, ...] = ()
    # (client's name, upstream's name) for fields the upstream spells differently
    renames: tuple[tuple[str, str], ...] = ()
    # honours `stream_options.include_usage`; if not, no `stream_options` is sent
    stream_usage: bool = True
    # also serves OpenAI's Responses API (`POST /responses`): Responses requests are
    # forwarded to it rather than translated onto chat
    responses_api: bool = False
    # what the API can do for any model (reasoning is per model: the catalogue says)
    capabilities: Capabilities = Capabilities()
    # serves OpenAI's legacy `POST /completions` (prompt in, text out)
    legacy_completions: bool = True


class Preset(ForwardingProfile, frozen=True, kw_only=True):
    base_url: str


PRESETS: dict[PresetName, Preset] = {
    # max_tokens is deprecated and refused by the o-series and newer models
    "openai": Preset(
        base_url="https://api.openai.com/v1",
        output_limit_field="max_completion_tokens",
        responses_api=True,
    ),
    # documented 400s: logprobs, top_logprobs, logit_bias, n other than 1
    # (messages[].name too, but that is inside messages and is not rewritten)
    "groq": Preset(
        base_url="https://api.groq.com/openai/v1",
        output_limit_field="max_completion_tokens",
        drop_params=("logit_bias",),
        capabilities=Capabilities(logprobs=False, multiple_choices=False),
        legacy_completions=False,
    ),
    # the final stream chunk carries usage unasked; stream_options is not documented
    "together": Preset(
        base_url="https://api.together.xyz/v1",
        output_limit_field="max_tokens",
        stream_usage=False,
    ),
    # text only; response_format json_object but no json_schema
    "deepseek": Preset(
        base_url="https://api.deepseek.com",
        output_limit_field="max_tokens",
        capabilities=Capabilities(vision=False, json_schema=False),
        legacy_completions=False,  # only a FIM beta at another base URL
    ),
    # a strict schema (422 extra_forbidden on any field it does not define); the
    # seed is `random_seed`, usage comes on the last chunk unasked
    "mistral": Preset(
        base_url="https://api.mistral.ai/v1",
        output_limit_field="max_tokens",
        drop_params=("logit_bias", "user", "store", "metadata", "service_tier"),
        renames=(("seed", "random_seed"),),
        stream_usage=False,
        capabilities=Capabilities(logprobs=False),
        legacy_completions=False,  # FIM is /fim/completions, another API
    ),
    "fireworks": Preset(
        base_url="https://api.fireworks.ai/inference/v1",
        output_limit_field="max_tokens",
        stream_usage=False,
    ),
    # usage is always on the last chunk
    "openrouter": Preset(
        base_url="https://openrouter.ai/api/v1",
        output_limit_field="max_tokens",
        stream_usage=False,
    ),
    "xai": Preset(
        base_url="https://api.x.ai/v1",
        output_limit_field="max_completion_tokens",
    ),
    # documents model, messages, temperature, top_p, max_tokens, the penalties and
    # stream; no function calling, no logprobs, one choice
    "perplexity": Preset(
        base_url="https://api.perplexity.ai",
        output_limit_field="max_tokens",
        drop_params=("tools", "tool_choice", "parallel_tool_calls"),
        stream_usage=False,
        capabilities=Capabilities(tools=False, logprobs=False, multiple_choices=False),
        legacy_completions=False,
    ),
    # self-hosted servers: the default local addresses
    "vllm": Preset(base_url="http://localhost:8000/v1", output_limit_field="max_tokens"),
    "ollama": Preset(base_url="http://localhost:11434/v1", output_limit_field="max_tokens"),
}
