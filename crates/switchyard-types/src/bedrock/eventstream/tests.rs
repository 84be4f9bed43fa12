use super::*;

/// `{'foo':'bar'}`, the payload of AWS's eventstream test vectors.
const FOO_BAR: &[u8] = b"{'foo':'bar'}";

/// AWS's published eventstream test vectors (positive cases).
fn positive_vectors() -> Vec<(&'static str, Vec<u8>, Message<'static>)> {
    vec![
        (
            "empty_message",
            vec![0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255],
            Message {
                headers: vec![],
                payload: b"",
            },
        ),
        (
            "int32_header",
            vec![
                0, 0, 0, 45, 0, 0, 0, 16, 65, 196, 36, 184, 10, 101, 118, 101, 110, 116, 45, 116,
                121, 112, 101, 4, 0, 0, 160, 12, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114,
                39, 125, 54, 244, 128, 160,
            ],
            Message {
                headers: vec![Header {
                    name: "event-type",
                    value: HeaderValue::Int(40972),
                }],
                payload: FOO_BAR,
            },
        ),
        (
            "payload_no_headers",
            vec![
                0, 0, 0, 29, 0, 0, 0, 0, 253, 82, 140, 90, 123, 39, 102, 111, 111, 39, 58, 39, 98,
                97, 114, 39, 125, 195, 101, 57, 54,
            ],
            Message {
                headers: vec![],
                payload: FOO_BAR,
            },
        ),
        (
            "payload_one_str_header",
            vec![
                0, 0, 0, 61, 0, 0, 0, 32, 7, 253, 131, 150, 12, 99, 111, 110, 116, 101, 110, 116,
                45, 116, 121, 112, 101, 7, 0, 16, 97, 112, 112, 108, 105, 99, 97, 116, 105, 111,
                110, 47, 106, 115, 111, 110, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39,
                125, 141, 156, 8, 177,
            ],
            Message {
                headers: vec![Header {
                    name: "content-type",
                    value: HeaderValue::String("application/json"),
                }],
                payload: FOO_BAR,
            },
        ),
    ]
}

#[test]
fn aws_positive_vectors_decode_and_encode_byte_for_byte() {
    for (name, bytes, expected) in positive_vectors() {
        let decoded = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}");
        assert_eq!(encode(&expected).unwrap(), bytes, "{name}");
        assert_eq!(declared_len(&bytes), Some(bytes.len()), "{name}");
    }
}

#[test]
fn aws_negative_vectors_are_rejected() {
    let str_header = positive_vectors()[3].1.clone();
    let no_headers = positive_vectors()[2].1.clone();

    // corrupted_headers: `content-type` became `content+type`; the message CRC catches it.
    let mut corrupted_headers = str_header.clone();
    corrupted_headers[20] = b'+';
    assert!(matches!(
        decode(&corrupted_headers),
        Err(Error::MessageCrc { .. })
    ));
    // corrupted_header_len: the prelude CRC catches it.
    let mut corrupted_header_len = str_header;
    corrupted_header_len[6] = 1;
    assert!(matches!(
        decode(&corrupted_header_len),
        Err(Error::PreludeCrc { .. })
    ));
    // corrupted_length.
    let mut corrupted_length = no_headers.clone();
    corrupted_length[0] = 1;
    assert!(matches!(
        decode(&corrupted_length),
        Err(Error::PreludeCrc { .. })
    ));
    // corrupted_payload.
    let mut corrupted_payload = no_headers;
    corrupted_payload[24] = 141;
    assert!(matches!(
        decode(&corrupted_payload),
        Err(Error::MessageCrc { .. })
    ));
}

fn every_header_type() -> Message<'static> {
    Message {
        headers: vec![
            Header {
                name: "true",
                value: HeaderValue::Bool(true),
            },
            Header {
                name: "false",
                value: HeaderValue::Bool(false),
            },
            Header {
                name: "byte",
                value: HeaderValue::Byte(-7),
            },
            Header {
                name: "short",
                value: HeaderValue::Short(-12_345),
            },
            Header {
                name: "int",
                value: HeaderValue::Int(i32::MIN),
            },
            Header {
                name: "long",
                value: HeaderValue::Long(i64::MAX),
            },
            Header {
                name: "bytes",
                value: HeaderValue::Bytes(&[0, 1, 2, 255]),
            },
            Header {
                name: ":event-type",
                value: HeaderValue::String("contentBlockDelta"),
            },
            Header {
                name: "timestamp",
                value: HeaderValue::Timestamp(1_700_000_000_123),
            },
            Header {
                name: "uuid",
                value: HeaderValue::Uuid([
                    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x0f, 0xed, 0xcb, 0xa9, 0x87,
                    0x65, 0x43, 0x21,
                ]),
            },
        ],
        payload: "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hé\"}}".as_bytes(),
    }
}

#[test]
fn every_header_type_round_trips() {
    let msg = every_header_type();
    let bytes = encode(&msg).unwrap();
    let back = decode(&bytes).unwrap();
    assert_eq!(back, msg);
    assert_eq!(back.header_str(":event-type"), Some("contentBlockDelta"));
    assert_eq!(back.header("byte"), Some(&HeaderValue::Byte(-7)));
    assert_eq!(back.header_str("int"), None);
    assert_eq!(back.header("missing"), None);
    // The wire layout of a few headers, by hand: name length, name, type, value.
    let find = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(find(b"\x04true\x00\x05false\x01"));
    assert!(find(b"\x04byte\x02\xf9"));
    assert!(find(b"\x05short\x03\xcf\xc7"));
    assert!(find(b"\x05bytes\x06\x00\x04\x00\x01\x02\xff"));
    assert!(find(b"\x0b:event-type\x07\x00\x11contentBlockDelta"));
}

#[test]
fn truncated_input_is_an_error_at_every_length() {
    let bytes = encode(&every_header_type()).unwrap();
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(decode(&longer), Err(Error::BadLength { .. })));
}

/// Re-computes both CRCs after a change, so that a test reaches the header parser.
fn reseal(bytes: &mut [u8]) {
    let prelude = crc32(&bytes[..8]);
    bytes[8..12].copy_from_slice(&prelude.to_be_bytes());
    let end = bytes.len() - 4;
    let crc = crc32(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn malformed_headers_are_rejected_with_a_reason() {
    let one = |name: &'static str, value| Message {
        headers: vec![Header { name, value }],
        payload: b"{}",
    };
    // An unknown value type.
    let mut bytes = encode(&one("x", HeaderValue::Bool(true))).unwrap();
    bytes[14] = 10;
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(Error::UnknownHeaderType(10)));
    // A string that is not UTF-8.
    let mut bytes = encode(&one("x", HeaderValue::String("ab"))).unwrap();
    bytes[17] = 0xff;
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(Error::NotUtf8(0)));
    // A string whose length runs past the headers section.
    let mut bytes = encode(&one("x", HeaderValue::String("ab"))).unwrap();
    bytes[16] = 9;
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(Error::HeaderTruncated(0)));
    // An empty name.
    let mut bytes = encode(&one("x", HeaderValue::Bool(true))).unwrap();
    bytes[12] = 0;
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(Error::EmptyHeaderName(0)));
    // A headers length larger than the message.
    let mut bytes = encode(&one("x", HeaderValue::Bool(true))).unwrap();
    bytes[4..8].copy_from_slice(&1000u32.to_be_bytes());
    reseal(&mut bytes);
    assert_eq!(decode(&bytes), Err(Error::BadHeadersLength(1000)));
    // Encoding refuses what the format cannot hold.
    let long_name: &'static str = Box::leak("n".repeat(256).into_boxed_str());
    assert_eq!(
        encode(&one(long_name, HeaderValue::Bool(true))),
        Err(Error::TooLarge("header name"))
    );
    let long_value: &'static str = Box::leak("v".repeat(70_000).into_boxed_str());
    assert_eq!(
        encode(&one("x", HeaderValue::String(long_value))),
        Err(Error::TooLarge("header value"))
    );
}

/// A small deterministic generator, so the "fuzz" below is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid = encode(&every_header_type()).unwrap();
    for round in 0..20_000 {
        let mut bytes = if round % 2 == 0 {
            valid.clone()
        } else {
            (0..(rng.next() % 96) as usize)
                .map(|_| rng.next() as u8)
                .collect()
        };
        if !bytes.is_empty() {
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % bytes.len();
                bytes[i] = rng.next() as u8;
            }
        }
        if round % 4 == 0 && bytes.len() >= 16 {
            // Valid CRCs, so the mutation reaches the header parser.
            let len = u32::try_from(bytes.len()).unwrap();
            bytes[..4].copy_from_slice(&len.to_be_bytes());
            let h = (rng.next() % (bytes.len() as u64 - 15)) as u32;
            bytes[4..8].copy_from_slice(&h.to_be_bytes());
            reseal(&mut bytes);
        }
        let _ = decode(&bytes);
    }
}
