"""Drives the Responses API's model-addressed sub-resources through the gateway with the
official `openai` Python SDK: `responses.input_tokens.count` and `responses.compact`.

Usage: python3 openai_responses_sub.py BASE_URL API_KEY OPENAI_MODEL TRANSLATED_MODEL
OPENAI_MODEL is an alias on an OpenAI-type deployment (forwarded); TRANSLATED_MODEL one on an
Anthropic deployment (a 400 naming the endpoint and the deployment). Exits non-zero (with a
traceback) on the first failed expectation.
"""
import asyncio
import sys

import openai

base_url, api_key, native, translated = sys.argv[1:5]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)
aclient = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)

# input_tokens: a longer input counts more tokens.
short = client.responses.input_tokens.count(model=native, input="hi")
assert short.object == "response.input_tokens", short
long = client.responses.input_tokens.count(
    model=native,
    instructions="Be brief.",
    input=[{"role": "user", "content": "a much longer question " * 20}],
)
assert long.input_tokens > short.input_tokens > 0, (short, long)


async def count_async():
    return await aclient.responses.input_tokens.count(model=native, input="hello there")


assert asyncio.run(count_async()).input_tokens > 0

# compact: the user messages come back followed by one compaction item.
compacted = client.responses.compact(
    model=native,
    input=[
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ],
)
assert compacted.object == "response.compaction", compacted
kinds = [item.type for item in compacted.output]
assert kinds == ["message", "message", "compaction"], kinds
assert compacted.usage.total_tokens > 0

# A translated deployment cannot express either: a clear 400 naming it.
for call in (
    lambda: client.responses.input_tokens.count(model=translated, input="hi"),
    lambda: client.responses.compact(model=translated, input="hi"),
):
    try:
        call()
    except openai.BadRequestError as e:
        message = e.body["message"]
        assert "claude/claude-sonnet-4-5" in message, message
        assert e.body["code"] == "unsupported_endpoint", e.body
    else:
        raise AssertionError("a translated deployment answered a sub-resource")

# No model: the gateway cannot route.
try:
    client.responses.input_tokens.count(input="hi")
except openai.BadRequestError as e:
    assert e.body["param"] == "model", e.body
else:
    raise AssertionError("input_tokens without a model was accepted")

print("ok")
