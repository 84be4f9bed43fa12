//! The mock's own writer of AWS eventstream messages, with its own CRC-32.
//!
//! The gateway decodes eventstream with `switchyard-types`; the mock deliberately shares none
//! of that code (not even the CRC crate), so the two sides are independent implementations of
//! the published format and a mistake in one shows up as a failure in the other.

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), one table lookup per byte.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Appends one message whose headers are all strings (the only type ConverseStream uses):
/// prelude (total length, headers length, prelude CRC), headers, payload, message CRC.
pub(crate) fn write_message(out: &mut Vec<u8>, headers: &[(&str, &str)], payload: &[u8]) {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = 12 + headers_len + payload.len() + 4;
    let start = out.len();
    out.extend_from_slice(&u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&u32::try_from(headers_len).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32(&out[start..start + 8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    for (name, value) in headers {
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
        out.push(7);
        out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(payload);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An event message (`:message-type: event`) carrying a JSON payload.
pub(crate) fn write_event(out: &mut Vec<u8>, event_type: &str, payload: &[u8]) {
    write_message(
        out,
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    );
}

/// An exception message (`:message-type: exception`) with `{"message": ...}`.
pub(crate) fn write_exception(out: &mut Vec<u8>, exception_type: &str, payload: &[u8]) {
    write_message(
        out,
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    );
}
