"""Drives the Responses API's model-addressed sub-resources through the gateway with the
official `openai` Python SDK: `responses.input_tokens.count` and `responses.compact`.

Usage: python3 openai_responses_sub.py BASE_URL API_KEY OPENAI_MODEL ANTHROPIC_MODEL BEDROCK_MODEL
OPENAI_MODEL is an alias on an OpenAI-type deployment (forwarded); ANTHROPIC_MODEL one on an
Anthropic deployment (input tokens counted by Anthropic's `count_tokens`, compaction a 400
naming the endpoint and the deployment); BEDROCK_MODEL one on a Bedrock deployment (which
cannot count: a 400). Exits non-zero (with a traceback) on the first failed expectation.
"""
import asyncio
import sys

import openai

base_url, api_key, native, translated, uncountable = sys.argv[1:6]
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

# Anthropic counts input tokens itself (sync and async); a longer input counts more.
short = client.responses.input_tokens.count(model=translated, input="hi")
assert short.object == "response.input_tokens" and short.input_tokens > 0, short
long = client.responses.input_tokens.count(
    model=translated, instructions="Be brief.", input="a much longer question " * 20
)
assert long.input_tokens > short.input_tokens, (short, long)


async def count_translated():
    # A client of its own: the first one belongs to the event loop that ran before.
    fresh = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)
    return await fresh.responses.input_tokens.count(model=translated, input="hello there")


assert asyncio.run(count_translated()).input_tokens > 0

# What a translated deployment cannot express: a clear 400 naming it.
for call, deployment in (
    (lambda: client.responses.compact(model=translated, input="hi"), "claude/claude-sonnet-4-5"),
    (lambda: client.responses.input_tokens.count(model=uncountable, input="hi"), "aws/"),
):
    try:
        call()
    except openai.BadRequestError as e:
        message = e.body["message"]
        assert deployment in message, message
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
