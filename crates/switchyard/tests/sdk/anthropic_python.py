"""Drives the gateway's Anthropic Messages API with the official `anthropic` Python SDK.

Usage: python3 anthropic_python.py BASE_URL API_KEY
`smart` is served by an Anthropic deployment (pass-through), `demo` by an OpenAI-compatible one
(translated). Exits non-zero (with a traceback) on the first failed expectation.
"""
import sys

import anthropic

base_url, api_key = sys.argv[1], sys.argv[2]
client = anthropic.Anthropic(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)
messages = [{"role": "user", "content": "Say hello in five words."}]
weather_tool = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}

for model, provider in [("smart", "claude"), ("demo", "mock")]:
    # Non-streaming, with response headers.
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=200, system="Be brief.", messages=messages
    )
    assert raw.headers["x-switchyard-provider"] == provider, raw.headers
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant", msg
    assert msg.model == model, msg.model
    assert msg.content[0].type == "text" and msg.content[0].text, msg
    assert msg.stop_reason == "end_turn", msg.stop_reason
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0, msg.usage

    # Streaming through the SDK's own event accumulator.
    with client.messages.stream(model=model, max_tokens=200, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.strip(), text
    assert final.content[0].text == text, (final, text)
    assert final.model == model
    assert final.usage.output_tokens > 0, final.usage

    # Forced tool use, ids and JSON input intact.
    msg = client.messages.create(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[weather_tool],
        tool_choice={"type": "any"},
    )
    assert msg.stop_reason == "tool_use", msg
    call = next(b for b in msg.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input.get("city"), str), call
    # ... and the result sent back in the next turn.
    follow = client.messages.create(
        model=model,
        max_tokens=200,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}],
            },
        ],
        tools=[weather_tool],
    )
    assert follow.content and follow.content[0].type == "text", follow

    # Streamed tool use: the SDK assembles input_json_delta fragments into the input object.
    with client.messages.stream(
        model=model,
        max_tokens=200,
        messages=[{"role": "user", "content": "Weather in Rome?"}],
        tools=[weather_tool],
        tool_choice={"type": "tool", "name": "get_weather"},
    ) as stream:
        final = stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert isinstance(call.input.get("city"), str), final

# Errors come back typed.
try:
    client.messages.create(model="no-such-model", max_tokens=10, messages=messages)
    raise AssertionError("expected NotFoundError")
except anthropic.NotFoundError as e:
    assert "smart" in str(e), e

try:
    client.messages.create(
        model="smart", max_tokens=10, messages=messages, extra_body={"mock": {"status": 400}}
    )
    raise AssertionError("expected BadRequestError")
except anthropic.BadRequestError:
    pass

bad = anthropic.Anthropic(base_url=base_url, api_key="wrong-key", max_retries=0, timeout=20)
try:
    bad.messages.create(model="smart", max_tokens=10, messages=messages)
    raise AssertionError("expected AuthenticationError")
except anthropic.AuthenticationError:
    pass

print("anthropic python sdk: ok")
