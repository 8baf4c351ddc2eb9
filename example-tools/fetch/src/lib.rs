//! The `fetch` tool: HTTP GET through the host's `wasi:http` (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "fetch-tool" });

use are_guest_sdk::http::Request;
use exports::example::fetch::fetch::{Guest, Response};

/// The body size kept when the caller does not say.
const DEFAULT_MAX_BYTES: u32 = 1024 * 1024;

struct Fetch;

impl Guest for Fetch {
    fn get(url: String, max_bytes: Option<u32>) -> Result<Response, String> {
        let max = max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        let response = Request::get(&url)
            .max_body_bytes(u64::from(max))
            .send()
            .map_err(|error| error.to_string())?;
        Ok(Response {
            status: response.status,
            body: response.text(),
            headers: response.headers,
            truncated: response.truncated,
        })
    }
}

export!(Fetch);
