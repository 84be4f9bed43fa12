"""Drives stored chat completions through the gateway with the official `openai` Python SDK,
sync and async: `chat.completions.create(store=True)`, `.list()` (with its auto-pagination),
`.retrieve()`, `.update()`, `.delete()` and `.messages.list()`; another team's key sees none of
it; a completion made by a translated deployment is a clear 400.

Usage: python3 openai_stored_chat.py BASE_URL KEY OTHER_TEAM_KEY OPENAI_MODEL TRANSLATED_MODEL
Exits non-zero (with a traceback) on the first failed expectation.
"""
import asyncio
import sys

import openai

base_url, key, other_key, model, translated = sys.argv[1:6]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
other = openai.OpenAI(base_url=base_url, api_key=other_key, max_retries=0, timeout=20)
aclient = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)

messages = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name three rail yards."},
]

# Create three, one streamed; all are readable at once.
made = []
for i in range(2):
    c = client.chat.completions.create(
        model=model, messages=messages, store=True, metadata={"run": "sdk", "i": str(i)}
    )
    made.append(c.id)
stream = client.chat.completions.create(
    model=model, messages=messages, store=True, stream=True, metadata={"run": "sdk", "i": "2"}
)
streamed_id = None
for chunk in stream:
    streamed_id = streamed_id or chunk.id
made.append(streamed_id)

got = client.chat.completions.retrieve(made[0])
assert got.id == made[0] and got.object == "chat.completion", got
assert got.model == model, got.model
assert got.choices[0].message.content, got

# The list pages through all of them (limit 2 forces a second page), oldest first.
page = client.chat.completions.list(limit=2)
assert [c.id for c in page.data] == made[:2], page
assert page.has_more is True
assert [c.id for c in client.chat.completions.list(limit=2)] == made
assert [c.id for c in client.chat.completions.list(order="desc")] == made[::-1]
assert [c.id for c in client.chat.completions.list(model=model)] == made
assert [c.id for c in client.chat.completions.list(metadata={"i": "1"})] == [made[1]]

# Update the metadata; the list filters on it.
updated = client.chat.completions.update(made[2], metadata={"run": "sdk", "i": "2", "tag": "x"})
assert updated.id == made[2] and updated.metadata["tag"] == "x", updated
assert [c.id for c in client.chat.completions.list(metadata={"tag": "x"})] == [made[2]]

# The messages of a stored completion, with their ids.
msgs = client.chat.completions.messages.list(made[0])
assert [m.role for m in msgs] == ["system", "user"], msgs
assert msgs.data[1].content == "Name three rail yards."
assert msgs.data[0].id == f"{made[0]}-0", msgs.data[0]
assert [m.role for m in client.chat.completions.messages.list(made[0], order="desc", limit=1).data] == ["user"]

# Another team sees nothing: 404s as for an unknown id, and an empty list.
for call in (
    lambda: other.chat.completions.retrieve(made[0]),
    lambda: other.chat.completions.update(made[0], metadata={"stolen": "yes"}),
    lambda: other.chat.completions.delete(made[0]),
    lambda: other.chat.completions.messages.list(made[0]),
):
    try:
        call()
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("another team reached a stored completion")
assert list(other.chat.completions.list()) == []
assert "stolen" not in client.chat.completions.retrieve(made[0]).metadata

# A translated deployment keeps nothing: a 400 naming it.
t = client.chat.completions.create(model=translated, messages=messages, store=True)
try:
    client.chat.completions.retrieve(t.id)
except openai.BadRequestError as e:
    assert "does not keep chat completions" in e.body["message"], e.body
else:
    raise AssertionError("a translated completion was retrieved")


async def run_async():
    c = await aclient.chat.completions.create(model=model, messages=messages, store=True)
    got = await aclient.chat.completions.retrieve(c.id)
    assert got.id == c.id
    ids = [x.id async for x in aclient.chat.completions.list(limit=1)]
    assert ids == made + [c.id], ids
    u = await aclient.chat.completions.update(c.id, metadata={"async": "yes"})
    assert u.metadata == {"async": "yes"}, u
    m = await aclient.chat.completions.messages.list(c.id)
    assert len(m.data) == 2
    d = await aclient.chat.completions.delete(c.id)
    assert d.deleted and d.id == c.id and d.object == "chat.completion.deleted", d
    try:
        await aclient.chat.completions.retrieve(c.id)
    except openai.NotFoundError:
        pass
    else:
        raise AssertionError("a deleted completion was retrieved")


asyncio.run(run_async())

# Delete the rest while paging through them (the cursor names deleted completions).
for c in client.chat.completions.list(limit=1):
    deleted = client.chat.completions.delete(c.id)
    assert deleted.deleted, deleted
assert list(client.chat.completions.list()) == []
print("ok")
