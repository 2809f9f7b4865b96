"""Past requests looked up by id: `GET /v1/generations/{id}` and OpenRouter's
`GET /api/v1/generation?id=`. Each finished request's record is kept, for
`generations.retention`, in the store the config names (memory, bounded in entries; or the
Redis every replica shares). Records are written by the accounts' background delivery, in
batches: nothing is written on a request's path."""

from gateway.observability.generations.store import (
    GenerationStore,
    MemoryGenerationStore,
    open_generation_store,
)

__all__ = ["GenerationStore", "MemoryGenerationStore", "open_generation_store"]
