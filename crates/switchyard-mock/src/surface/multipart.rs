//! A small `multipart/form-data` reader (RFC 7578) for the mock's upload endpoints: enough to
//! take a form apart the way OpenAI's API does (named fields, one file with its filename and
//! content type), over a body that is already in memory.

/// One part of a form.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// The `name` of its `Content-Disposition`.
    pub(crate) name: String,
    /// The `filename`, for file parts.
    pub(crate) filename: Option<String>,
    /// The part's `Content-Type`, when it has one.
    pub(crate) content_type: Option<String>,
    /// The part's bytes.
    pub(crate) data: &'a [u8],
}

/// The boundary of a `multipart/form-data` content type, unquoted.
pub(crate) fn boundary(content_type: &str) -> Option<&str> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty())
    })
}

/// Splits `body` into its parts; `None` when it is not a well-formed form with `boundary`.
pub(crate) fn parse<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = &body[find(body, delimiter)? + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = std::str::from_utf8(&rest[..head_end]).ok()?;
        let content = &rest[head_end + 4..];
        let mut next = Vec::with_capacity(delimiter.len() + 2);
        next.extend_from_slice(b"\r\n");
        next.extend_from_slice(delimiter);
        let end = find(content, &next)?;
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            data: &content[..end],
        };
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for p in v.split(';').skip(1) {
                    let Some((pk, pv)) = p.split_once('=') else {
                        continue;
                    };
                    let pv = pv.trim().trim_matches('"').to_owned();
                    match pk.trim() {
                        "name" => part.name = pv,
                        "filename" => part.filename = Some(pv),
                        _ => {}
                    }
                }
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part.content_type = Some(v.trim().to_owned());
            }
        }
        parts.push(part);
        rest = &content[end + next.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(i) = haystack.get(from..)?.iter().position(|b| *b == first) {
        let at = from + i;
        if haystack.get(at..at + needle.len())? == needle {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_with_a_field_and_a_file_is_taken_apart() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{\"a\":1}\r\n\r\n--XyZ--\r\n";
        let b = boundary("multipart/form-data; boundary=\"XyZ\"").unwrap();
        let parts = parse(body, b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "purpose");
        assert_eq!(parts[0].data, b"batch");
        assert_eq!(parts[1].filename.as_deref(), Some("in.jsonl"));
        assert_eq!(parts[1].content_type.as_deref(), Some("application/jsonl"));
        assert_eq!(parts[1].data, b"{\"a\":1}\r\n");
    }

    #[test]
    fn malformed_forms_are_refused() {
        assert!(boundary("application/json").is_none());
        assert!(parse(b"--XyZ\r\nno head end", "XyZ").is_none());
        assert!(parse(b"nothing", "XyZ").is_none());
    }
}
