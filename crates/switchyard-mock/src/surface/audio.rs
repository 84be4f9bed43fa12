//! OpenAI's text to speech, `POST /v1/audio/speech`: binary audio in the requested
//! `response_format` (`mp3` by default), sent in frames as the real API streams it.
//!
//! `wav` and `pcm` are real audio (24 kHz, 16-bit mono, as OpenAI's): a tone whose length
//! follows the input's. The compressed formats are the same samples behind the format's magic
//! bytes, which is enough for clients that store or forward the bytes; the content is a pure
//! function of the request, so tests can compare bytes.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{header, HeaderValue};
use serde::Deserialize;

use super::Frames;
use crate::openai::{invalid_request, parse_error, read_request};
use crate::{text, Shared};

/// OpenAI's sample rate for `pcm` and `wav`.
const SAMPLE_RATE: u32 = 24_000;
/// Longest input OpenAI accepts, in characters.
const MAX_INPUT: usize = 4096;
/// Frame size of the response body.
const FRAME: usize = 16 * 1024;

#[derive(Deserialize)]
struct SpeechRequest {
    model: Option<String>,
    input: Option<String>,
    voice: Option<serde_json::Value>,
    response_format: Option<String>,
}

pub(super) async fn speech(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (_, body) = match read_request(&shared, req).await {
        Ok(read) => read,
        Err(resp) => return resp,
    };
    let req: SpeechRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return parse_error(&e),
    };
    if req.model.is_none() {
        return invalid_request("Missing required parameter: 'model'.", Some("model"), None);
    }
    if req.voice.is_none() {
        return invalid_request("Missing required parameter: 'voice'.", Some("voice"), None);
    }
    let Some(input) = req.input.as_deref().filter(|i| !i.is_empty()) else {
        return invalid_request("Missing required parameter: 'input'.", Some("input"), None);
    };
    if input.chars().count() > MAX_INPUT {
        return invalid_request(
            &format!("Invalid 'input': string too long. Expected at most {MAX_INPUT} characters."),
            Some("input"),
            Some("string_above_max_length"),
        );
    }
    let format = req.response_format.as_deref().unwrap_or("mp3");
    let (content_type, magic): (&str, &[u8]) = match format {
        "mp3" => ("audio/mpeg", b"ID3\x04\x00\x00\x00\x00\x00\x00"),
        "opus" => ("audio/ogg", b"OggS\x00\x02"),
        "aac" => ("audio/aac", b"\xff\xf1\x50\x80"),
        "flac" => ("audio/flac", b"fLaC"),
        "wav" => ("audio/wav", b""),
        "pcm" => ("audio/pcm", b""),
        other => {
            return invalid_request(
                &format!(
                    "Invalid value for 'response_format': '{other}'. Expected one of: mp3, opus, \
                     aac, flac, wav, pcm."
                ),
                Some("response_format"),
                None,
            )
        }
    };
    let samples = tone(input);
    let mut out = Vec::with_capacity(samples.len() + 64);
    if format == "wav" {
        out.extend_from_slice(&wav_header(samples.len() as u32));
    }
    out.extend_from_slice(magic);
    out.extend_from_slice(&samples);
    let mut resp = Response::new(Body::new(Frames::new(Bytes::from(out), FRAME)));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// 16-bit little-endian samples: 60 ms per input character (at least half a second) of a
/// tone whose pitch depends on the input, plus a little noise so every byte value occurs.
fn tone(input: &str) -> Vec<u8> {
    let ms = (input.chars().count() as u32 * 60).max(500);
    let count = SAMPLE_RATE / 1000 * ms;
    let mut rng = text::Rng::new(text::fnv1a(input.as_bytes()));
    let pitch = 220.0 + (rng.next_u64() % 440) as f32;
    let mut out = Vec::with_capacity(count as usize * 2);
    for i in 0..count {
        let t = i as f32 / SAMPLE_RATE as f32;
        let wave = (t * pitch * std::f32::consts::TAU).sin() * 8000.0;
        let noise = rng.unit_f32() * 300.0;
        out.extend_from_slice(&((wave + noise) as i16).to_le_bytes());
    }
    out
}

/// The 44-byte RIFF header of a 24 kHz 16-bit mono WAV with `data_len` bytes of samples.
fn wav_header(data_len: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"RIFF");
    put(4, &(36 + data_len).to_le_bytes());
    put(8, b"WAVEfmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &1u16.to_le_bytes());
    put(22, &1u16.to_le_bytes());
    put(24, &SAMPLE_RATE.to_le_bytes());
    put(28, &(SAMPLE_RATE * 2).to_le_bytes());
    put(32, &2u16.to_le_bytes());
    put(34, &16u16.to_le_bytes());
    put(36, b"data");
    put(40, &data_len.to_le_bytes());
    h
}
