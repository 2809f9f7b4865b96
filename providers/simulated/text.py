"""What the simulated provider writes: whole sentences of its configured text.

An answer is as many sentences as fit in `completion_tokens` (at least one), so it ends
where a sentence ends and says `stop`. Only a client's token limit below that cuts it
short, mid-sentence, with `length` — as a real model's answer is cut.
"""

from __future__ import annotations

import itertools
import re

import msgspec

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


class Answer(msgspec.Struct, frozen=True):
    tokens: list[str]  # one word a token, each after the first with its leading space
    finish_reason: str  # "stop", or "length" when the client's limit cut it

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def sentences(text: str) -> list[list[str]]:
    """The text's words, grouped into sentences (a text without an end mark is one)."""
    words = text.split() or ["token"]
    grouped: list[list[str]] = [[]]
    for word in words:
        grouped[-1].append(word)
        if _SENTENCE_END.search(word):
            grouped.append([])
    return [s for s in grouped if s]


def write(text: str, natural: int, limit: int | None) -> Answer:
    """Sentences of `text` up to `natural` tokens, cut at `limit` if that is shorter."""
    words: list[str] = []
    for sentence in itertools.cycle(sentences(text)):
        if words and len(words) + len(sentence) > natural:
            break
        words += sentence
    finish_reason = "stop"
    if limit is not None and limit < len(words):
        words, finish_reason = words[:limit], "length"
    return Answer(
        tokens=[word if i == 0 else " " + word for i, word in enumerate(words)],
        finish_reason=finish_reason,
    )
