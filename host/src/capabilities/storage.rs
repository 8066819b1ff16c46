//! `storage`: key-value and score boards private to (guild, feature), bounded by
//! the plan's quota of bytes and rows.

use super::Effect;
use crate::runtime::HostState;
use crate::runtime::bindings::townes::feature::storage::{Entry, Host, ScoreEntry};
use crate::runtime::wit::{Capability, Error};

const MAX_KEY_BYTES: usize = 256;
const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_BOARD_BYTES: usize = 64;

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "a key is 1 to {MAX_KEY_BYTES} bytes; this one is {}",
            key.len()
        )));
    }
    Ok(())
}

fn check_board(board: &str) -> Result<(), Error> {
    if board.is_empty() || board.len() > MAX_BOARD_BYTES {
        return Err(Error::InvalidArgument(format!(
            "a board name is 1 to {MAX_BOARD_BYTES} bytes; this one is {}",
            board.len()
        )));
    }
    Ok(())
}

fn check_limit(limit: u32, max: u32) -> Result<(), Error> {
    if !(1..=max).contains(&limit) {
        return Err(Error::InvalidArgument(format!(
            "limit is {limit}; it must be 1 to {max}"
        )));
    }
    Ok(())
}

fn score(e: crate::store::ScoreEntry) -> ScoreEntry {
    ScoreEntry {
        subject: e.subject,
        score: e.score,
        rank: e.rank,
    }
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        const CALL: &str = "storage.get";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) => self
                .store
                .kv_get(&self.scope, &key)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |_| None)
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), Error> {
        const CALL: &str = "storage.set";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) if value.len() > MAX_VALUE_BYTES => Err(Error::InvalidArgument(format!(
                "a value is at most {MAX_VALUE_BYTES} bytes; this one is {}",
                value.len()
            ))),
            Ok(()) => self
                .store
                .kv_set(&self.scope, &key, &value, self.grant.storage)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |_| {
            Some(Effect::StorageSet {
                key: key.clone(),
                bytes: value.len(),
            })
        })
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        const CALL: &str = "storage.delete";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) => self
                .store
                .kv_delete(&self.scope, &key)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |&existed| {
            existed.then(|| Effect::StorageDeleted { key: key.clone() })
        })
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        const CALL: &str = "storage.increment";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) => self
                .store
                .kv_increment(&self.scope, &key, delta, self.grant.storage)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |&value| {
            Some(Effect::StorageIncremented {
                key: key.clone(),
                value,
            })
        })
    }

    async fn list_prefix(&mut self, prefix: String, limit: u32) -> Result<Vec<Entry>, Error> {
        const CALL: &str = "storage.list-prefix";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_limit(limit, 1000) {
            Ok(()) => self
                .store
                .kv_list(&self.scope, &prefix, limit)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        let result = result.map(|rows| {
            rows.into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect()
        });
        self.finish(CALL, result, |_| None)
    }

    async fn board_increment(
        &mut self,
        board: String,
        subject: u64,
        delta: i64,
    ) -> Result<i64, Error> {
        const CALL: &str = "storage.board-increment";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .store
                .board_increment(&self.scope, &board, subject, delta, self.grant.storage)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |&score| {
            Some(Effect::ScoreChanged {
                board: board.clone(),
                subject,
                score,
            })
        })
    }

    async fn board_set(&mut self, board: String, subject: u64, score: i64) -> Result<(), Error> {
        const CALL: &str = "storage.board-set";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .store
                .board_set(&self.scope, &board, subject, score, self.grant.storage)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |_| {
            Some(Effect::ScoreChanged {
                board: board.clone(),
                subject,
                score,
            })
        })
    }

    async fn board_remove(&mut self, board: String, subject: u64) -> Result<bool, Error> {
        const CALL: &str = "storage.board-remove";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .store
                .board_remove(&self.scope, &board, subject)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result, |&existed| {
            existed.then(|| Effect::ScoreRemoved {
                board: board.clone(),
                subject,
            })
        })
    }

    async fn board_top(&mut self, board: String, limit: u32) -> Result<Vec<ScoreEntry>, Error> {
        const CALL: &str = "storage.board-top";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board).and_then(|()| check_limit(limit, 100)) {
            Ok(()) => self
                .store
                .board_top(&self.scope, &board, limit)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        let result = result.map(|entries| entries.into_iter().map(score).collect());
        self.finish(CALL, result, |_| None)
    }

    async fn board_rank(
        &mut self,
        board: String,
        subject: u64,
    ) -> Result<Option<ScoreEntry>, Error> {
        const CALL: &str = "storage.board-rank";
        self.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .store
                .board_rank(&self.scope, &board, subject)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.finish(CALL, result.map(|e| e.map(score)), |_| None)
    }
}
