//! Chat completion chunks as the Responses API's typed semantic events.
//!
//! | chat chunks | Responses events |
//! |---|---|
//! | the first chunk | `response.created`, `response.in_progress` (the response, `in_progress`) |
//! | `delta.reasoning_content` | a `reasoning` item: `response.output_item.added`, `response.content_part.added` (`reasoning_text`), `response.reasoning_text.delta`... |
//! | `delta.content` (or `delta.refusal`) | a `message` item: `response.output_item.added`, `response.content_part.added` (`output_text`), `response.output_text.delta`... |
//! | `delta.tool_calls[i]` (first piece) | a `function_call` item: `response.output_item.added` |
//! | `delta.tool_calls[i].function.arguments` | `response.function_call_arguments.delta` |
//! | a new item starting, or `[DONE]` | the open items close: `response.output_text.done` / `response.reasoning_text.done`, `response.content_part.done`, `response.function_call_arguments.done`, `response.output_item.done` |
//! | `finish_reason`, usage chunk | kept for the end |
//! | `[DONE]` | `response.completed` (or `response.incomplete` for `length`/`content_filter`) with output and usage |
//! | `{"error": ...}` | `error`, then `response.failed` with the error |
//!
//! Every event carries its `type` and a `sequence_number` counting from 0.

use serde::Deserialize;
use serde_json::{json, Value};

use super::response::{
    finish, function_call_item, message_item, output_text, reasoning_item, responses_usage,
};
use super::Meta;
use crate::anthropic::TranslateError;
use crate::openai::Usage;

/// What the caller does after [`ChatToResponsesStream::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep reading.
    Continue,
    /// The response is complete; its last event was emitted.
    Done,
    /// The upstream reported an error; `error` and `response.failed` were emitted.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Reasoning,
    Message,
    Call,
}

#[derive(Debug)]
struct Item {
    kind: Kind,
    id: String,
    /// Text, reasoning text or arguments so far.
    text: String,
    call_id: String,
    name: String,
    open: bool,
}

/// The translator of one stream; feed it every chunk payload (`data:` content) in order.
#[derive(Debug)]
pub struct ChatToResponsesStream {
    meta: Meta,
    shell: Value,
    seq: u64,
    started: bool,
    finished: bool,
    items: Vec<Item>,
    /// Chat tool-call index → item index.
    calls: Vec<(u64, usize)>,
    finish: Option<String>,
    usage: Option<Usage>,
    reasoning_tokens: u64,
    last: Option<Value>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<CallDelta>>,
}

#[derive(Deserialize)]
struct CallDelta {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// One event: its `type` (the SSE event name) and JSON payload.
pub type Event = (&'static str, Vec<u8>);

impl ChatToResponsesStream {
    /// Starts a stream for the response `meta` names, filling `shell` (see
    /// [`super::request::ResponsesToChat::shell`]).
    pub fn new(meta: Meta, shell: Value) -> Self {
        // Indexing a JSON value that is not an object by key would panic.
        let shell = if shell.is_object() { shell } else { json!({}) };
        Self {
            meta,
            shell,
            seq: 0,
            started: false,
            finished: false,
            items: Vec::new(),
            calls: Vec::new(),
            finish: None,
            usage: None,
            reasoning_tokens: 0,
            last: None,
        }
    }

    /// Usage seen so far (the final count once the stream ended).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The finished response object (completed, incomplete or failed), once the stream ended.
    pub fn response(&self) -> Option<&Value> {
        self.last.as_ref()
    }

    /// Translates one chunk payload (or `[DONE]`) into events appended to `out`.
    pub fn push(&mut self, payload: &[u8], out: &mut Vec<Event>) -> Result<Step, TranslateError> {
        if self.finished {
            return Ok(Step::Done);
        }
        if payload == b"[DONE]" {
            self.start(out)?;
            return self.complete(out);
        }
        let chunk: Chunk = serde_json::from_slice(payload)
            .map_err(|e| TranslateError::body(format!("not a chat completion chunk: {e}")))?;
        self.start(out)?;
        if let Some(error) = chunk.error {
            return self.fail(&error, out);
        }
        if let Some(u) = chunk.usage.filter(|u| !u.is_null()) {
            self.reasoning_tokens = u["completion_tokens_details"]["reasoning_tokens"]
                .as_u64()
                .unwrap_or(self.reasoning_tokens);
            if let Ok(usage) = serde_json::from_value::<Usage>(u) {
                self.usage = Some(usage);
            }
        }
        for choice in chunk.choices {
            if let Some(delta) = choice.delta {
                if let Some(r) = delta.reasoning_content.filter(|r| !r.is_empty()) {
                    let i = self.current(Kind::Reasoning, out)?;
                    self.text_delta(i, &r, out)?;
                }
                for text in [delta.content, delta.refusal].into_iter().flatten() {
                    if !text.is_empty() {
                        let i = self.current(Kind::Message, out)?;
                        self.text_delta(i, &text, out)?;
                    }
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.call_delta(call, out)?;
                }
            }
            if let Some(f) = choice.finish_reason {
                self.finish = Some(f);
            }
        }
        Ok(Step::Continue)
    }

    fn emit(
        &mut self,
        out: &mut Vec<Event>,
        kind: &'static str,
        mut body: Value,
    ) -> Result<(), TranslateError> {
        body["type"] = kind.into();
        body["sequence_number"] = self.seq.into();
        self.seq += 1;
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| TranslateError::body(format!("cannot encode an event: {e}")))?;
        out.push((kind, bytes));
        Ok(())
    }

    fn start(&mut self, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let shell = self.shell.clone();
        self.emit(out, "response.created", json!({"response": shell}))?;
        self.emit(out, "response.in_progress", json!({"response": shell}))
    }

    /// The open item of `kind` to append to (a reasoning or message item), opening one (and
    /// closing the others) when there is none.
    fn current(&mut self, kind: Kind, out: &mut Vec<Event>) -> Result<usize, TranslateError> {
        // At most one item is open at a time: opening one closes the others.
        if self
            .items
            .last()
            .is_some_and(|it| it.kind == kind && it.open)
        {
            return Ok(self.items.len() - 1);
        }
        self.close_all(out)?;
        let index = self.items.len();
        let (prefix, item, part) = match kind {
            Kind::Reasoning => {
                let id = self.meta.item_id("rs", index);
                let item = json!({"id": id, "type": "reasoning", "summary": [], "content": []});
                (id, item, json!({"type": "reasoning_text", "text": ""}))
            }
            _ => {
                let id = self.meta.item_id("msg", index);
                let item = message_item(&id, Vec::new(), "in_progress");
                (id, item, output_text(""))
            }
        };
        self.items.push(Item {
            kind,
            id: prefix.clone(),
            text: String::new(),
            call_id: String::new(),
            name: String::new(),
            open: true,
        });
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": index, "item": item}),
        )?;
        self.emit(
            out,
            "response.content_part.added",
            json!({"item_id": prefix, "output_index": index, "content_index": 0, "part": part}),
        )?;
        Ok(index)
    }

    fn text_delta(
        &mut self,
        i: usize,
        text: &str,
        out: &mut Vec<Event>,
    ) -> Result<(), TranslateError> {
        let Some(item) = self.items.get_mut(i) else {
            return Ok(());
        };
        item.text.push_str(text);
        let (kind, id) = (item.kind, item.id.clone());
        let mut body = json!({"item_id": id, "output_index": i, "content_index": 0, "delta": text});
        if kind == Kind::Reasoning {
            self.emit(out, "response.reasoning_text.delta", body)
        } else {
            body["logprobs"] = json!([]);
            self.emit(out, "response.output_text.delta", body)
        }
    }

    fn call_delta(&mut self, call: CallDelta, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let i = match self.calls.iter().find(|(c, _)| *c == call.index) {
            Some((_, i)) => *i,
            None => {
                self.close_all(out)?;
                let index = self.items.len();
                let id = self.meta.item_id("fc", index);
                let call_id = call.id.unwrap_or_else(|| id.clone());
                let name = name.clone().unwrap_or_default();
                let item = function_call_item(&id, &call_id, &name, "", "in_progress");
                self.items.push(Item {
                    kind: Kind::Call,
                    id,
                    text: String::new(),
                    call_id,
                    name,
                    open: true,
                });
                self.calls.push((call.index, index));
                self.emit(
                    out,
                    "response.output_item.added",
                    json!({"output_index": index, "item": item}),
                )?;
                index
            }
        };
        if let Some(args) = arguments.filter(|a| !a.is_empty()) {
            let Some(item) = self.items.get_mut(i) else {
                return Ok(());
            };
            item.text.push_str(&args);
            let id = item.id.clone();
            self.emit(
                out,
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": i, "delta": args}),
            )?;
        }
        Ok(())
    }

    /// The finished form of item `i`.
    fn finished_item(&self, i: usize) -> Value {
        let Some(it) = self.items.get(i) else {
            return Value::Null;
        };
        match it.kind {
            Kind::Reasoning => reasoning_item(&it.id, &it.text),
            Kind::Message => message_item(&it.id, vec![output_text(&it.text)], "completed"),
            Kind::Call => function_call_item(&it.id, &it.call_id, &it.name, &it.text, "completed"),
        }
    }

    fn close_all(&mut self, out: &mut Vec<Event>) -> Result<(), TranslateError> {
        for i in 0..self.items.len() {
            if !self.items[i].open {
                continue;
            }
            self.items[i].open = false;
            let (kind, id, text) = (
                self.items[i].kind,
                self.items[i].id.clone(),
                self.items[i].text.clone(),
            );
            match kind {
                Kind::Message => {
                    self.emit(
                        out,
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "text": text, "logprobs": []}),
                    )?;
                    self.emit(
                        out,
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "part": output_text(&text)}),
                    )?;
                }
                Kind::Reasoning => {
                    self.emit(
                        out,
                        "response.reasoning_text.done",
                        json!({"item_id": id, "output_index": i, "content_index": 0, "text": text}),
                    )?;
                    self.emit(
                        out,
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": i, "content_index": 0,
                               "part": {"type": "reasoning_text", "text": text}}),
                    )?;
                }
                Kind::Call => {
                    let name = self.items[i].name.clone();
                    self.emit(
                        out,
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": i, "arguments": text, "name": name}),
                    )?;
                }
            }
            let item = self.finished_item(i);
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": i, "item": item}),
            )?;
        }
        Ok(())
    }

    fn complete(&mut self, out: &mut Vec<Event>) -> Result<Step, TranslateError> {
        self.close_all(out)?;
        let output = (0..self.items.len())
            .map(|i| self.finished_item(i))
            .collect();
        let mut object = self.shell.clone();
        let usage = self
            .usage
            .map(|u| responses_usage(&u, self.reasoning_tokens));
        finish(&mut object, output, self.finish.as_deref(), usage);
        let kind = if object["status"] == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.emit(out, kind, json!({"response": object}))?;
        self.last = Some(object);
        self.finished = true;
        Ok(Step::Done)
    }

    fn fail(&mut self, error: &Value, out: &mut Vec<Event>) -> Result<Step, TranslateError> {
        let message = error["message"]
            .as_str()
            .unwrap_or("The provider failed while streaming.")
            .to_owned();
        let code = error["code"]
            .as_str()
            .or_else(|| error["type"].as_str())
            .unwrap_or("server_error")
            .to_owned();
        self.emit(
            out,
            "error",
            json!({"code": code, "message": message, "param": error["param"].clone()}),
        )?;
        let output: Vec<Value> = (0..self.items.len())
            .map(|i| self.finished_item(i))
            .collect();
        let mut object = self.shell.clone();
        object["status"] = "failed".into();
        object["output"] = Value::Array(output);
        object["error"] = json!({"code": code, "message": message});
        self.emit(out, "response.failed", json!({"response": object}))?;
        self.last = Some(object);
        self.finished = true;
        Ok(Step::Failed)
    }
}
