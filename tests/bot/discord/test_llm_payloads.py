"""Generated text is untrusted like article text: payloads neutralise it and keep the limits."""

from __future__ import annotations

from bot.answer.extractive import Answer, Citation
from bot.discord.messages import (
    CONTENT_LIMIT,
    GLOSS_CHARS,
    WRITING_MARK,
    answer_payloads,
    sources_payloads,
    streaming_payload,
)
from tests.bot.discord.test_messages import assert_within_limits


def test_the_streaming_preview_defuses_mentions_and_fits_one_message() -> None:
    payload = streaming_payload("Ask @everyone and <@123> " + "very long answer " * 300)

    assert payload.content is not None
    assert len(payload.content) == CONTENT_LIMIT
    assert payload.content.endswith("…" + WRITING_MARK)
    assert "@everyone" not in payload.content
    assert "<@123>" not in payload.content
    assert_within_limits([payload])


def test_a_generated_answer_with_notice_and_glosses_is_defused_and_within_limits() -> None:
    citation = Citation(
        n=1,
        chunk_id="tbd.txt#0",
        article="tbd.txt",
        title="TBD",
        date="2025-12-11",
        url=None,
        path="articles/tbd.txt",
        quote="知情人士表示，TBD 團隊擷取了 Gemma。" * 300,
        gloss="The team distilled Gemma; tell @here. " * 40,
    )
    answer = Answer(
        question="What models?",
        text="TBD distilled Gemma, ping @everyone [1]. " * 80,
        citations=[citation],
        retrieved=[],
        abstained=False,
        mode="generated",
        notice="Not found as written in the cited passages (translations?): <@&42>.",
    )

    payloads = answer_payloads(answer)
    sources = sources_payloads(answer.citations)

    assert_within_limits(payloads)
    assert_within_limits(sources)
    first = payloads[0].content or ""
    assert first.startswith(
        "*Not found as written in the cited passages (translations?): <@\u200b&42>.*\n"
    )
    shown = " ".join(
        [p.content or "" for p in payloads]
        + [e.description or "" for p in payloads + sources for e in p.embeds]
    )
    assert "@everyone" not in shown
    assert "@here" not in shown
    [preview_embed] = payloads[-1].embeds
    gloss = (preview_embed.description or "").split("\n↳ ")[1]
    assert len(gloss) <= GLOSS_CHARS
    assert gloss.endswith("…")
