"""Drives the gateway with the official `openai` Python SDK.

Usage: python3 openai_python.py BASE_URL API_KEY
Exits non-zero (with a traceback) on the first failed expectation.
"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=20)
messages = [{"role": "user", "content": "Say hello in five words."}]

# Non-streaming chat, with response headers.
raw = client.chat.completions.with_raw_response.create(model="demo", messages=messages)
assert raw.headers["x-switchyard-provider"] == "mock", raw.headers
assert raw.headers["x-request-id"]
resp = raw.parse()
assert resp.model == "demo", resp.model
assert resp.choices[0].message.content
assert resp.usage.total_tokens > 0

# Streaming chat with usage.
chunks = list(
    client.chat.completions.create(
        model="demo", messages=messages, stream=True, stream_options={"include_usage": True}
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text.strip(), chunks
assert all(c.model == "demo" for c in chunks)
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0

# Unknown parameters reach the provider (the mock echoes what it received).
echo = client.chat.completions.create(
    model="demo",
    messages=messages,
    extra_body={"future_param": {"x": 1}, "mock": {"echo": True}},
)
received = json.loads(echo.choices[0].message.content)
assert received["body"]["future_param"] == {"x": 1}, received
assert received["body"]["model"] == "mock-gpt"

# Embeddings (the SDK asks for base64 and decodes it).
emb = client.embeddings.create(model="demo", input=["alpha", "beta"])
assert len(emb.data) == 2 and len(emb.data[0].embedding) > 0
assert emb.model == "demo"

# Models.
ids = [m.id for m in client.models.list()]
assert "demo" in ids, ids

# Errors arrive as the SDK's typed exceptions.
try:
    client.chat.completions.create(model="no-such-alias", messages=messages)
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError as e:
    assert "demo" in str(e)
try:
    openai.OpenAI(base_url=base_url, api_key="sk-wrong-key", max_retries=0).models.list()
    raise AssertionError("expected AuthenticationError")
except openai.AuthenticationError:
    pass
try:
    client.chat.completions.create(model="demo", messages=[{"role": 1}])
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError:
    pass

# A stream that breaks upstream ends with an error the SDK raises.
try:
    for _ in client.chat.completions.create(
        model="demo", messages=messages, stream=True, extra_body={"mock": {"disconnect_after_chunks": 2}}
    ):
        pass
    raise AssertionError("expected APIError from the error event")
except openai.APIError:
    pass

print("python sdk ok")
