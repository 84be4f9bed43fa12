"""Drives the Responses API through the gateway with the official `openai` Python SDK.

Usage: python3 openai_responses.py BASE_URL API_KEY MODEL PROVIDER [ECHO_MODEL]
MODEL is an alias routed to provider PROVIDER (its configured name): an OpenAI-type deployment
(served natively, stored upstream) or an Anthropic, Gemini or Bedrock one (translated, stored
by the gateway). ECHO_MODEL, when given, is an alias on the same kind of provider whose mock
echoes the upstream request it received, which proves what a continuation sent. Exits non-zero
(with a traceback) on the first failed expectation.
"""
import asyncio
import json
import sys

import openai

base_url, api_key, model, provider = sys.argv[1:5]
echo_model = sys.argv[5] if len(sys.argv) > 5 else None
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)
aclient = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)

weather = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}

# Non-streaming, with instructions and a developer message; response headers say who served.
raw = client.responses.with_raw_response.create(
    model=model,
    instructions="You are terse.",
    input=[
        {"role": "developer", "content": "Answer in five words."},
        {"role": "user", "content": [{"type": "input_text", "text": "Say hello."}]},
    ],
    max_output_tokens=200,
    temperature=0.2,
)
assert raw.headers["x-switchyard-provider"] == provider, raw.headers
resp = raw.parse()
assert resp.object == "response", resp
assert resp.id.startswith("resp_"), resp.id
assert resp.model == model, resp.model
assert resp.status == "completed", resp.status
assert resp.output_text.strip(), resp
assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0, resp.usage
assert resp.usage.total_tokens >= resp.usage.input_tokens + resp.usage.output_tokens - 1

# Retrieve and list its input items (stored by the upstream or by the gateway).
got = client.responses.retrieve(resp.id)
assert got.id == resp.id and got.output_text == resp.output_text, got
assert got.model == model, got.model
items = client.responses.input_items.list(resp.id, order="asc")
roles = [getattr(i, "role", None) for i in items.data]
assert roles == ["developer", "user"], items
page = client.responses.input_items.list(resp.id, limit=1)
assert len(page.data) == 1 and page.has_more, page

# Streaming: typed events in order, sequence numbers counting up, text deltas that add up.
events = list(
    client.responses.create(model=model, input="Say hello in five words.", stream=True)
)
types = [e.type for e in events]
assert types[0] == "response.created" and types[1] == "response.in_progress", types
assert types[-1] == "response.completed", types
assert [e.sequence_number for e in events] == list(range(len(events))), events
for needed in (
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
):
    assert needed in types, (needed, types)
text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
done = events[-1].response
assert text and done.output_text == text, (text, done)
assert done.model == model and done.usage.total_tokens > 0, done
streamed = client.responses.retrieve(done.id)
assert streamed.output_text == text, streamed

# The SDK's streaming helper accumulates the same events into the final response.
with client.responses.stream(model=model, input="Say hello.") as stream:
    for _ in stream:
        pass
    final = stream.get_final_response()
assert final.output_text and final.status == "completed", final

# A function tool round trip: a forced call, then its output sent back with the history.
first = client.responses.create(
    model=model,
    input="What is the weather in Paris?",
    tools=[weather],
    tool_choice={"type": "function", "name": "get_weather"},
)
calls = [o for o in first.output if o.type == "function_call"]
assert len(calls) == 1, first.output
call = calls[0]
assert call.name == "get_weather" and call.call_id, call
assert isinstance(json.loads(call.arguments)["city"], str), call.arguments
second = client.responses.create(
    model=model,
    previous_response_id=first.id,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 21}'}],
    tools=[weather],
)
assert second.previous_response_id == first.id, second
assert second.output_text.strip(), second

# The same call, streamed: the arguments arrive in deltas that join into the final JSON.
events = list(
    client.responses.create(
        model=model,
        input="Weather in Oslo?",
        tools=[weather],
        tool_choice="required",
        stream=True,
    )
)
types = [e.type for e in events]
assert "response.function_call_arguments.delta" in types, types
args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
done_args = [e for e in events if e.type == "response.function_call_arguments.done"][0]
assert args == done_args.arguments, (args, done_args)
json.loads(args)
assert events[-1].response.output[0].type == "function_call", events[-1]

# Structured output with a JSON schema.
structured = client.responses.create(
    model=model,
    input="Give a city and its population.",
    text={
        "format": {
            "type": "json_schema",
            "name": "city",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
                "required": ["name", "population"],
                "additionalProperties": False,
            },
        }
    },
)
data = json.loads(structured.output_text)
assert isinstance(data["name"], str) and isinstance(data["population"], int), data

# Async client, plain and streaming.
async def run_async():
    r = await aclient.responses.create(model=model, input="Say hi.")
    assert r.output_text and r.model == model, r
    seen = []
    async for e in await aclient.responses.create(model=model, input="Say hi.", stream=True):
        seen.append(e.type)
    assert seen[0] == "response.created" and seen[-1] == "response.completed", seen
    deleted = await aclient.responses.delete(r.id)
    assert deleted is None
    try:
        await aclient.responses.retrieve(r.id)
        raise AssertionError("a deleted response was still found")
    except openai.NotFoundError:
        pass


asyncio.run(run_async())

# An unknown response id is a 404.
try:
    client.responses.retrieve("resp_does_not_exist")
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError:
    pass

# A continuation sends the earlier turns upstream (the echo mock answers with what it got).
if echo_model:
    one = client.responses.create(model=echo_model, input="the first question")
    two = client.responses.create(
        model=echo_model, previous_response_id=one.id, input="the second question"
    )
    sent = two.output_text
    assert "the first question" in sent and "the second question" in sent, sent
    assert sent.index("the first question") < sent.index("the second question"), sent

print("ok")
