use super::*;

#[test]
fn traceparent_parses_the_w3c_examples() {
    let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    assert_eq!(hex(&tp.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&tp.span_id), "00f067aa0ba902b7");
    assert!(tp.sampled);
    let unsampled =
        TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    assert!(!unsampled.sampled);
    // A future version may append fields.
    assert!(
        TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
            .is_some()
    );
}

#[test]
fn invalid_traceparents_are_ignored() {
    for bad in [
        "",
        "garbage",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e47é6-00f067aa0ba902b7-01",
    ] {
        assert_eq!(TraceParent::parse(bad), None, "{bad}");
    }
}

#[test]
fn header_round_trips() {
    let trace = [7u8; 16];
    let span = [9u8; 8];
    let v = TraceParent::header(&trace, &span);
    let tp = TraceParent::parse(v.to_str().unwrap()).unwrap();
    assert_eq!((tp.trace_id, tp.span_id, tp.sampled), (trace, span, true));
}

#[test]
fn random_ids_differ() {
    let a: [u8; 8] = random_bytes();
    let b: [u8; 8] = random_bytes();
    let t: [u8; 16] = random_bytes();
    assert_ne!(a, b);
    assert_ne!(t, [0; 16]);
}

#[test]
fn encoding_follows_the_otlp_json_mapping() {
    let span = SpanData {
        trace_id: [1; 16],
        span_id: [2; 8],
        parent: Some([3; 8]),
        name: "chat gpt-4o".into(),
        kind: SpanKind::Client,
        start_ns: 1_700_000_000_000_000_000,
        end_ns: 1_700_000_000_500_000_000,
        attrs: vec![
            ("gen_ai.request.model", Attr::Str("gpt-4o".into())),
            ("gen_ai.usage.input_tokens", Attr::Int(12)),
            ("x.ratio", Attr::Float(0.5)),
            ("x.flag", Attr::Bool(true)),
        ],
        error: Some("boom".into()),
    };
    let doc: Value = serde_json::from_slice(&encode("svc", &[span])).unwrap();
    let rs = &doc["resourceSpans"][0];
    assert_eq!(rs["resource"]["attributes"][0]["key"], "service.name");
    assert_eq!(
        rs["resource"]["attributes"][0]["value"]["stringValue"],
        "svc"
    );
    let s = &rs["scopeSpans"][0]["spans"][0];
    assert_eq!(s["traceId"], "01010101010101010101010101010101");
    assert_eq!(s["spanId"], "0202020202020202");
    assert_eq!(s["parentSpanId"], "0303030303030303");
    assert_eq!(s["kind"], 3);
    assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
    assert_eq!(s["endTimeUnixNano"], "1700000000500000000");
    assert_eq!(s["status"]["code"], 2);
    assert_eq!(s["status"]["message"], "boom");
    let attrs = s["attributes"].as_array().unwrap();
    assert_eq!(attrs[1]["value"]["intValue"], "12");
    assert_eq!(attrs[2]["value"]["doubleValue"], 0.5);
    assert_eq!(attrs[3]["value"]["boolValue"], true);
}

#[tokio::test]
async fn unsampled_client_traces_are_relayed_but_not_exported() {
    let (tx, mut rx) = mpsc::channel(8);
    let tracer = Arc::new(Tracer {
        tx,
        dropped: AtomicU64::new(0),
        exported: Arc::new(AtomicU64::new(0)),
    });
    let (p, m): (Arc<str>, Arc<str>) = (Arc::from("p"), Arc::from("m"));
    let off = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    let mut t = RequestTrace::start(&tracer, Some(&off));
    assert_eq!(t.begin_attempt("openai", &p, &m), off);
    t.finish(finished());
    assert!(rx.try_recv().is_err(), "an unsampled trace was exported");

    let on = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    let mut t = RequestTrace::start(&tracer, Some(&on));
    assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        t.parent,
        Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
    );
    let up = t.begin_attempt("openai", &p, &m);
    assert_ne!(up, on);
    assert!(up
        .to_str()
        .unwrap()
        .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    t.finish(finished());
    match rx.try_recv() {
        Ok(Msg::Spans(spans)) => assert_eq!(spans.len(), 2),
        _ => panic!("no spans exported"),
    }
    assert!(RequestTrace::start(&tracer, None).parent.is_none());
}

fn finished() -> Finished<'static> {
    Finished {
        operation: "chat",
        request_id: "r1",
        request_model: Some("demo"),
        response_model: None,
        provider_kind: None,
        status: 200,
        outcome: "completed",
        error: None,
        tokens: None,
        stream: false,
        route: None,
    }
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let (tx, _rx) = mpsc::channel(1);
    let tracer = Tracer {
        tx,
        dropped: AtomicU64::new(0),
        exported: Arc::new(AtomicU64::new(0)),
    };
    let span = || SpanData {
        trace_id: [1; 16],
        span_id: [2; 8],
        parent: None,
        name: "chat".into(),
        kind: SpanKind::Server,
        start_ns: 1,
        end_ns: 2,
        attrs: Vec::new(),
        error: None,
    };
    tracer.submit(vec![span()]);
    tracer.submit(vec![span(), span()]);
    assert_eq!(tracer.dropped(), 2);
}
