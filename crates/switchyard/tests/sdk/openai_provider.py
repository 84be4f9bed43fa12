"""Drives one provider type through the gateway with the official `openai` Python SDK.

Usage: python3 openai_provider.py BASE_URL API_KEY MODEL PROVIDER
MODEL is an alias routed to a deployment of provider PROVIDER (its configured name), whatever
that provider's wire format is; the gateway translates. Exits non-zero (with a traceback) on
the first failed expectation.
"""
import json
import sys

import openai

base_url, api_key, model, provider = sys.argv[1:5]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)
messages = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello in five words."},
]
weather = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
forced = {"type": "function", "function": {"name": "get_weather"}}

# Non-streaming chat, with response headers.
raw = client.chat.completions.with_raw_response.create(
    model=model, messages=messages, max_tokens=64, temperature=0.2
)
assert raw.headers["x-switchyard-provider"] == provider, raw.headers
resp = raw.parse()
assert resp.model == model, resp.model
assert resp.choices[0].message.content
assert resp.choices[0].finish_reason in ("stop", "length"), resp.choices[0].finish_reason
assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0, resp.usage

# Streaming chat with the final usage chunk.
chunks = list(
    client.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text.strip(), chunks
assert all(c.model == model for c in chunks)
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
assert finishes == ["stop"] or finishes == ["length"], finishes
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0, chunks[-1]

# A forced tool call, non-streaming: the call comes back with an id and JSON arguments.
resp = client.chat.completions.create(
    model=model, messages=messages, tools=[weather], tool_choice=forced
)
choice = resp.choices[0]
assert choice.finish_reason == "tool_calls", choice
call = choice.message.tool_calls[0]
assert call.id and call.function.name == "get_weather", call
json.loads(call.function.arguments)

# The tool's result goes back in a second turn.
followup = messages + [
    {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
    {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
]
resp = client.chat.completions.create(model=model, messages=followup, tools=[weather])
assert resp.choices[0].message.content, resp

# A forced tool call, streaming: the arguments arrive in pieces that join into JSON.
chunks = list(
    client.chat.completions.create(
        model=model, messages=messages, tools=[weather], tool_choice=forced, stream=True
    )
)
calls = {}
for c in chunks:
    for d in (c.choices[0].delta.tool_calls or []) if c.choices else []:
        entry = calls.setdefault(d.index, {"id": None, "name": None, "args": ""})
        entry["id"] = entry["id"] or d.id
        if d.function and d.function.name:
            entry["name"] = d.function.name
        if d.function and d.function.arguments:
            entry["args"] += d.function.arguments
assert calls and calls[0]["id"] and calls[0]["name"] == "get_weather", calls
json.loads(calls[0]["args"])
finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
assert finishes == ["tool_calls"], finishes

# A bad request comes back as an OpenAI-shaped error the SDK raises.
try:
    client.chat.completions.create(model=model, messages=[{"role": "nobody", "content": "x"}])
    raise AssertionError("expected an error")
except openai.BadRequestError as e:
    assert e.status_code == 400, e

print("ok")
