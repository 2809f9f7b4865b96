"""`POST /v1/messages/count_tokens`: the requested model's own count where one of its
deployments speaks the Messages API (Anthropic's `count_tokens`, Bedrock's CountTokens),
tried in the config's order; otherwise, or when none of them can count now, the
gateway's estimate (about four bytes of the JSON of `system`, `messages` and `tools` a
token). The `x-switchboard-token-count` header says which: `native` or `estimate`."""

from __future__ import annotations

import logging

import msgspec

from gateway.ingress.messages.decoding import MessagesInput
from gateway.ingress.messages.operations import ClientHeaders, native_fields
from gateway.services import Services
from providers.anthropic.native import MessagesCall, MessagesNative
from providers.errors import ProviderError, UpstreamRejectedRequest

log = logging.getLogger("switchboard.messages")
_COUNTED = ("system", "messages", "tools")


class _TokenCount(msgspec.Struct):
    input_tokens: int


def estimated_input_tokens(source: MessagesInput) -> int:
    size = sum(len(source.fields[name]) for name in _COUNTED if name in source.fields)
    return max(1, size // 4)


async def count_tokens(
    services: Services, source: MessagesInput, client: ClientHeaders, request_id: str
) -> tuple[bytes, dict[str, str]]:
    resolved = services.models.resolve(source.options.models[0])
    headers = {"request-id": request_id, "x-switchboard-token-count": "estimate"}
    for deployment in resolved.deployments:
        provider = services.providers[deployment.provider]
        if not isinstance(provider, MessagesNative) or not provider.speaks_messages(
            deployment.model
        ):
            continue
        call = MessagesCall(
            fields=native_fields(source),
            model=deployment.model,
            version=client.version,
            betas=client.betas,
            beta_query=client.beta_query,
            request_id=request_id,
        )
        try:
            count = await provider.count_message_tokens(call)
        except UpstreamRejectedRequest:
            raise  # the request itself is refused: any other deployment would refuse it
        except ProviderError as exc:
            log.warning(
                "count_tokens failed, trying the next or estimating: provider=%s host=%s "
                "status=%s error=%s reason=%s",
                deployment.provider,
                exc.upstream_host or "-",
                exc.upstream_status if exc.upstream_status is not None else "-",
                exc.code,
                exc.message,
            )
            continue
        headers.update(
            {
                "x-switchboard-token-count": "native",
                "x-switchboard-provider": deployment.provider,
                "x-switchboard-model": deployment.model,
            }
        )
        if call.dropped:
            headers["x-switchboard-dropped-params"] = ",".join(call.dropped)
        return msgspec.json.encode(_TokenCount(count)), headers
    return msgspec.json.encode(_TokenCount(estimated_input_tokens(source))), headers
