#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn query_params_are_decoded() {
    assert_eq!(
        query_param("a=1&after=msg%5F1&b", "after").as_deref(),
        Some("msg_1")
    );
    assert_eq!(
        query_param("stream=true", "stream").as_deref(),
        Some("true")
    );
    assert_eq!(query_param("x=%zz+y", "x").as_deref(), Some("%zz y"));
    assert!(query_param("", "limit").is_none());
}

#[test]
fn item_pages_are_validated() {
    assert_eq!(
        items_page("").unwrap(),
        ItemsPage {
            after: None,
            limit: 20,
            descending: true
        }
    );
    let p = items_page("limit=5&order=asc&after=msg_2").unwrap();
    assert_eq!(
        (p.limit, p.descending, p.after.as_deref()),
        (5, false, Some("msg_2"))
    );
    for bad in ["limit=0", "limit=101", "limit=x", "order=up"] {
        assert!(
            matches!(items_page(bad), Err(GatewayError::InvalidField { .. })),
            "{bad}"
        );
    }
}
