//! Durable key-value and score-board storage private to this feature in this
//! guild — capability [`Storage`](crate::Capability::Storage).
//!
//! A quota bounds bytes (keys + values) and rows; a write past it answers
//! `Error::QuotaExceeded`. Writes are durable when the call returns.
//!
//! Score boards keep one `i64` score per subject (a user, a channel, …):
//! [`board_top`] lists the best, [`board_rank`] finds one subject. Ranks are
//! 1-based; equal scores are ordered by subject id, ascending.

use crate::{Error, Snowflake, route};
use serde::{Serialize, de::DeserializeOwned};

pub use crate::{Entry, ScoreEntry};

/// The value of `key`, or `None` when it is not set.
pub fn get(key: &str) -> Result<Option<String>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::get(key),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.kv_get(key)),
    )
}

/// Sets `key` to `value`.
pub fn set(key: &str, value: &str) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::set(key, value),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.kv_set(key, value)),
    )
}

/// Sets `key` to `value` only if its current value is `expected` (`None`: only
/// if it is absent), atomically; returns whether it did. Of two invocations
/// racing on one key, exactly one wins:
///
/// ```no_run
/// # use townes_sdk::storage;
/// let last = storage::get("last")?;
/// if storage::set_if("last", last.as_deref(), "now")? {
///     // this invocation, and no concurrent one, moved `last` on
/// }
/// # Ok::<(), townes_sdk::Error>(())
/// ```
pub fn set_if(key: &str, expected: Option<&str>, value: &str) -> Result<bool, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::set_if(key, expected, value),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.kv_set_if(key, expected, value)),
    )
}

/// Deletes `key`; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::delete(key),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.kv_delete(key)),
    )
}

/// Atomically adds `delta` to the integer at `key` (missing = 0); returns the
/// new value. A value that is not an integer is `Error::InvalidArgument`.
pub fn increment(key: &str, delta: i64) -> Result<i64, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::increment(key, delta),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.kv_increment(key, delta)),
    )
}

/// Entries whose key starts with `prefix`, in key order, at most `limit` (1-1000).
pub fn list_prefix(prefix: &str, limit: u32) -> Result<Vec<Entry>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::list_prefix(prefix, limit),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.kv_list_prefix(prefix, limit)),
    )
}

/// Adds `delta` to `subject`'s score on `board` (missing = 0); returns the new
/// score.
pub fn board_increment(board: &str, subject: Snowflake, delta: i64) -> Result<i64, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::board_increment(board, subject, delta),
        mock: crate::testing::call(crate::Capability::Storage, |h| {
            h.board_increment(board, subject, delta)
        }),
    )
}

/// Sets `subject`'s score on `board`.
pub fn board_set(board: &str, subject: Snowflake, score: i64) -> Result<(), Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::board_set(board, subject, score),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.board_set(board, subject, score)),
    )
}

/// Removes `subject` from `board`; returns whether it was on it.
pub fn board_remove(board: &str, subject: Snowflake) -> Result<bool, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::board_remove(board, subject),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.board_remove(board, subject)),
    )
}

/// The best `limit` (1-100) scores on `board`, best first.
pub fn board_top(board: &str, limit: u32) -> Result<Vec<ScoreEntry>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::board_top(board, limit),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.board_top(board, limit)),
    )
}

/// `subject`'s score and rank on `board`, or `None` when it is not on it.
pub fn board_rank(board: &str, subject: Snowflake) -> Result<Option<ScoreEntry>, Error> {
    route!(
        wasm: crate::bindings::townes::feature::storage::board_rank(board, subject),
        mock: crate::testing::call(crate::Capability::Storage, |h| h.board_rank(board, subject)),
    )
}

/// The value of `key` parsed as JSON into `T`, or `None` when not set. A value
/// that does not parse is `Error::InvalidArgument`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    match get(key)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::InvalidArgument(format!(
                "stored value of {key:?} is not the expected JSON: {e}"
            ))
        }),
    }
}

/// Sets `key` to `value` serialized as JSON.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    let text = serde_json::to_string(value).map_err(|e| {
        Error::InvalidArgument(format!("value for {key:?} is not serializable: {e}"))
    })?;
    set(key, &text)
}

/// How many times [`compare_and_swap`] reads again after losing a race.
pub const SWAP_ATTEMPTS: u32 = 8;

/// Reads `key`, asks `change` for its new value given what was read (`None`
/// from `change`: leave it as it is), and writes it only if nobody wrote
/// `key` meanwhile ([`set_if`]); else reads again and asks again, up to
/// [`SWAP_ATTEMPTS`] times, then answers `Unavailable`. `change` may run more
/// than once, so it must only compute; its error is returned as is, with
/// nothing written. Returns the value written, if any.
///
/// Every invocation is a fresh instance and several run at once, so a
/// read-modify-write without this can lose another invocation's write.
pub fn compare_and_swap(
    key: &str,
    mut change: impl FnMut(Option<&str>) -> Result<Option<String>, Error>,
) -> Result<Option<String>, Error> {
    for _ in 0..SWAP_ATTEMPTS {
        let old = get(key)?;
        let Some(new) = change(old.as_deref())? else {
            return Ok(None);
        };
        if old.as_deref() == Some(new.as_str()) || set_if(key, old.as_deref(), &new)? {
            return Ok(Some(new));
        }
    }
    Err(Error::Unavailable(format!(
        "{key:?} is changing too fast; try again"
    )))
}

/// Changes the JSON record at `key` in place with [`compare_and_swap`]:
/// `change` edits the parsed value (and may run more than once). Returns the
/// record as written, or `None` when `key` holds nothing (nothing is written
/// then). A stored value that does not parse is `Error::InvalidArgument`.
pub fn update_json<T: Serialize + DeserializeOwned>(
    key: &str,
    mut change: impl FnMut(&mut T) -> Result<(), Error>,
) -> Result<Option<T>, Error> {
    let mut written = None;
    compare_and_swap(key, |old| {
        written = None;
        let Some(old) = old else {
            return Ok(None);
        };
        let mut value: T = serde_json::from_str(old).map_err(|e| {
            Error::InvalidArgument(format!(
                "stored value of {key:?} is not the expected JSON: {e}"
            ))
        })?;
        change(&mut value)?;
        let new = serde_json::to_string(&value).map_err(|e| {
            Error::InvalidArgument(format!("value for {key:?} is not serializable: {e}"))
        })?;
        written = Some(value);
        Ok(Some(new))
    })?;
    Ok(written)
}
