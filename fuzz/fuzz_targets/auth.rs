//! The master-key `authorization` header, `x-ms-date` and the request path: `verify` accepts
//! only the signature it computes itself, a request it signed verifies, and every refusal is a
//! typed error with the status Cosmos DB answers with. A resource token in the header is never
//! accepted unless the server minted it (no fuzzed input can forge its HMAC).
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use tributary_wire::auth::{
    DEFAULT_MAX_CLOCK_SKEW, EMULATOR_KEY, MasterKey, authorization_header, resource_of_path, verify,
};
use tributary_wire::headers::parse_http_date;
use tributary_wire::resource_token::ResourceTokenKey;

fn key() -> &'static MasterKey {
    static KEY: OnceLock<MasterKey> = OnceLock::new();
    KEY.get_or_init(|| MasterKey::from_base64(EMULATOR_KEY).expect("the emulator key is base64"))
}

/// The `sig=` value as `verify` reads it (URL-decoded, trimmed, spaces back to `+`).
fn signature_in(header: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(header.trim())
        .decode_utf8()
        .ok()?;
    decoded.split('&').find_map(|field| {
        let (name, value) = field.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("sig")
            .then(|| value.trim().replace(' ', "+"))
    })
}

fuzz_target!(|data: &[u8]| {
    // A request as four lines: verb, path, x-ms-date, authorization (header values hold no
    // line feeds), so the seeds are readable signed requests for the fuzzer to edit.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(4, '\n');
    let (Some(verb), Some(path), Some(x_ms_date), Some(authorization)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return;
    };
    if let Ok(Some(token)) = tributary_wire::auth::resource_token_of(Some(authorization)) {
        let token_key = ResourceTokenKey::derive(key());
        let refusal = token_key
            .verify(&token, SystemTime::UNIX_EPOCH)
            .expect_err("a fuzzed resource token cannot carry a valid signature");
        assert_eq!(refusal.http_status(), 401, "{refusal:?}");
    }
    let Ok(address) = resource_of_path(path) else {
        return;
    };
    let now = parse_http_date(x_ms_date.trim()).unwrap_or(SystemTime::UNIX_EPOCH);
    match verify(
        key(),
        verb,
        &address,
        Some(authorization),
        Some(x_ms_date),
        None,
        now,
        DEFAULT_MAX_CLOCK_SKEW,
    ) {
        Ok(()) => {
            // Accepted: the header carries the signature of this request (the link as sent,
            // or lowercased as the Python SDK signs resource-id links).
            let date = x_ms_date.trim();
            let sent = signature_in(authorization);
            let expected = [
                address.resource_link.clone(),
                address.resource_link.to_lowercase(),
            ]
            .map(|link| {
                signature_in(&authorization_header(
                    key(),
                    verb,
                    &address.resource_type,
                    &link,
                    date,
                ))
            });
            assert!(expected.contains(&sent), "accepted {authorization:?}");
        }
        Err(error) => assert!(matches!(error.http_status(), 401 | 403), "{error:?}"),
    }
    // What it signs itself always verifies, whenever the date parses.
    if let Ok(signed_at) = parse_http_date(x_ms_date.trim()) {
        let date = x_ms_date.trim();
        let header = authorization_header(
            key(),
            verb,
            &address.resource_type,
            &address.resource_link,
            date,
        );
        let result = verify(
            key(),
            verb,
            &address,
            Some(&header),
            Some(x_ms_date),
            None,
            signed_at,
            DEFAULT_MAX_CLOCK_SKEW,
        );
        assert_eq!(result, Ok(()), "{verb:?} {path:?} {x_ms_date:?}");
    }
});
