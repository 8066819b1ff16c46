//! Files this feature keeps in the guild — transcripts, copied attachments —
//! under the plan's quota — capability [`Storage`](crate::Capability::Storage).
//! The guild's managers reach them from the dashboard; [`link`] makes a URL
//! anyone holding it can open until it expires.
//!
//! ```no_run
//! use townes_sdk::files;
//! files::put("transcripts/42.html", "text/html; charset=utf-8", b"<p>hi</p>")?;
//! let url = files::link("transcripts/42.html", 7 * 24 * 3600)?;
//! # Ok::<(), townes_sdk::Error>(())
//! ```

use crate::{Error, FileInfo, Snowflake, route};

/// Stores a file, replacing one of the same name. Names are 1-128 characters
/// of `A-Z a-z 0-9 . _ - /`; the content type a MIME type.
pub fn put(name: &str, content_type: &str, data: &[u8]) -> Result<FileInfo, Error> {
    route!(
        wasm: crate::bindings::townes::feature::files::put(name, content_type, data),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.put_file(name, content_type, data)),
    )
}

/// A file's bytes, or `None`.
pub fn get(name: &str) -> Result<Option<Vec<u8>>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::files::get(name),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.get_file(name)),
    )
}

/// Deletes a file; returns whether it existed.
pub fn delete(name: &str) -> Result<bool, Error> {
    route!(
        wasm: crate::bindings::townes::feature::files::delete(name),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.delete_file(name)),
    )
}

/// Files whose names start with `prefix`, in name order, at most `limit` (1-1000).
pub fn list_prefix(prefix: &str, limit: u32) -> Result<Vec<FileInfo>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::files::list_prefix(prefix, limit),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.list_files(prefix, limit)),
    )
}

/// A URL that serves the file to anyone holding it for `expires_in_seconds`
/// (60 to 604,800).
pub fn link(name: &str, expires_in_seconds: u32) -> Result<String, Error> {
    route!(
        wasm: crate::bindings::townes::feature::files::link(name, expires_in_seconds),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.link_file(name, expires_in_seconds)),
    )
}

/// Copies attachment `attachment_id` of message `message_id` in `channel_id`
/// into a file named `name`, so it outlives Discord's link (which expires
/// after about a day). Needs [`Messages`](crate::Capability::Messages) and
/// [`MessageContent`](crate::Capability::MessageContent) besides
/// [`Storage`](crate::Capability::Storage); the file takes the attachment's
/// content type. One larger than the plan's bytes per file is refused with
/// `QuotaExceeded`.
pub fn copy_attachment(
    name: &str,
    channel_id: Snowflake,
    message_id: Snowflake,
    attachment_id: Snowflake,
) -> Result<FileInfo, Error> {
    route!(
        wasm: crate::bindings::townes::feature::files::copy_attachment(name, channel_id, message_id, attachment_id),
        mock: crate::testing::call(crate::Capability::Storage, |h| {
            h.copy_attachment(name, channel_id, message_id, attachment_id)
        }),
    )
}
