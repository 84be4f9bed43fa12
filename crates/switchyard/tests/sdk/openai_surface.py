"""Drives the gateway's wider API surface with the official `openai` Python SDK: legacy
completions (sync and async, streaming and not), models retrieve, wildcard routes, and the
pass-through endpoints (files, images, audio speech, moderations, batches).

Usage: python3 openai_surface.py BASE_URL API_KEY
Exits non-zero (with a traceback) on the first failed expectation.
"""
import asyncio
import io
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
aclient = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)

# --- legacy completions ---
raw = client.completions.with_raw_response.create(model="demo", prompt="Once upon a time", max_tokens=40)
assert raw.headers["x-switchyard-model"] == "mock-gpt", raw.headers
c = raw.parse()
assert c.object == "text_completion" and c.model == "demo", c
assert c.choices[0].text.strip() and c.choices[0].finish_reason in ("stop", "length"), c
assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens

two = client.completions.create(model="demo", prompt=["a", "b"], n=2, max_tokens=5)
assert [ch.index for ch in two.choices] == [0, 1, 2, 3], two
assert all(ch.finish_reason == "length" for ch in two.choices), two

chunks = list(client.completions.create(model="demo", prompt="Hi", stream=True,
                                        stream_options={"include_usage": True}))
text = "".join(ch.choices[0].text for ch in chunks if ch.choices)
assert text.strip(), chunks
assert all(ch.model == "demo" for ch in chunks)
assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1]


async def async_completions():
    c = await aclient.completions.create(model="demo", prompt="async hello", max_tokens=8)
    assert c.choices[0].text and c.model == "demo"
    stream = await aclient.completions.create(model="demo", prompt="async stream", stream=True)
    pieces = [ch.choices[0].text async for ch in stream if ch.choices]
    assert "".join(pieces).strip(), pieces
    f = await aclient.files.create(file=("async.txt", b"async bytes"), purpose="user_data")
    assert (await aclient.files.content(f.id)).read() == b"async bytes"

asyncio.run(async_completions())

# A deployment that does not offer the endpoint: a 400 naming it and the deployment.
try:
    client.completions.create(model="smart", prompt="x")
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    msg = str(e)
    assert "/v1/completions" in msg and "claude/claude-sonnet-4-5" in msg, msg

# --- models ---
m = client.models.retrieve("demo")
assert m.id == "demo" and m.object == "model" and m.owned_by == "switchyard", m
w = client.models.retrieve("wild-anything")
assert w.id == "wild-anything" and w.owned_by == "mock", w
ids = [m.id for m in client.models.list()]
assert "demo" in ids and "wild-*" in ids, ids
try:
    client.models.retrieve("no-such-model")
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError:
    pass
try:
    client.models.delete("demo")
    raise AssertionError("expected BadRequestError")
except openai.BadRequestError as e:
    assert "allow_model_delete" in str(e), str(e)

# Wildcard routes serve requests: `wild-*` forwards the whole name.
r = client.chat.completions.with_raw_response.create(
    model="wild-gpt", messages=[{"role": "user", "content": "hi"}])
assert r.headers["x-switchyard-route"] == "wildcard", r.headers
assert r.headers["x-switchyard-model"] == "wild-gpt", r.headers
assert r.parse().model == "wild-gpt"

# --- files ---
payload = bytes(range(256)) * 64 + b'{"custom_id":"r1"}\n'
f = client.files.create(file=("data.bin", io.BytesIO(payload)), purpose="user_data")
assert f.object == "file" and f.bytes == len(payload) and f.filename == "data.bin", f
got = client.files.retrieve(f.id)
assert got.id == f.id and got.purpose == "user_data", got
listed = [x.id for x in client.files.list()]
assert f.id in listed, listed
assert [x.id for x in client.files.list(purpose="batch")] == [], "purpose filter"
content = client.files.content(f.id)
assert content.read() == payload, "file content differs"
try:
    client.files.retrieve("file-missing")
    raise AssertionError("expected NotFoundError")
except openai.NotFoundError:
    pass

# --- batches ---
batch_input = client.files.create(
    file=("batch.jsonl", b'{"custom_id":"1","method":"POST","url":"/v1/chat/completions","body":{}}\n'),
    purpose="batch")
b = client.batches.create(input_file_id=batch_input.id, endpoint="/v1/chat/completions",
                          completion_window="24h", metadata={"team": "qa"})
assert b.object == "batch" and b.status == "validating" and b.request_counts.total == 1, b
assert client.batches.retrieve(b.id).id == b.id
assert b.id in [x.id for x in client.batches.list()]
cancelled = client.batches.cancel(b.id)
assert cancelled.status == "cancelling", cancelled
assert client.batches.retrieve(b.id).status == "cancelled"
deleted = client.files.delete(f.id)
assert deleted.deleted and deleted.id == f.id, deleted

# --- images ---
img = client.images.generate(model="gpt-image-1", prompt="a lighthouse", n=2)
assert len(img.data) == 2 and img.data[0].b64_json and img.usage.total_tokens > 0, img
dalle = client.images.generate(model="dall-e-3", prompt="a lighthouse")
assert dalle.data[0].url and dalle.data[0].revised_prompt == "a lighthouse", dalle
events = list(client.images.generate(model="gpt-image-1", prompt="x", stream=True, partial_images=2))
assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + ["image_generation.completed"], events

# --- audio speech (binary) ---
speech = client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="Hello there",
                                    response_format="wav")
audio = speech.read()
assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE" and len(audio) > 10000, audio[:16]
again = client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="Hello there",
                                   response_format="wav").read()
assert again == audio, "speech is not deterministic through the gateway"

# --- moderations ---
mod = client.moderations.create(model="omni-moderation-latest", input=["a calm day", "we attack at dawn"])
assert [r.flagged for r in mod.results] == [False, True], mod
assert mod.results[1].categories.violence is True

print("ok")
