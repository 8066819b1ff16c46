//! `storage`: key-value and score boards private to (guild, feature), bounded by
//! the plan's quota of bytes and rows.

use super::{Cap, Effect};
use crate::store::{Scope, Store};
use crate::wit::townes::feature::storage::{Entry, Host, ScoreEntry};
use crate::wit::{Capability, Error};
use townes_limits::storage as limits;

/// What `storage` needs: the database and the (guild, feature) it is private
/// to. The quota is the grant's.
pub struct StorageCtx {
    pub store: Store,
    pub scope: Scope,
}

/// The shared argument checks, as the errors a feature receives.
fn check_key(key: &str) -> Result<(), Error> {
    Ok(limits::check_key(key)?)
}

fn check_board(board: &str) -> Result<(), Error> {
    Ok(limits::check_board(board)?)
}

fn check_limit(limit: u32, max: u32) -> Result<(), Error> {
    Ok(limits::check_limit(limit, max)?)
}

fn score(e: crate::store::ScoreEntry) -> ScoreEntry {
    ScoreEntry {
        subject: e.subject,
        score: e.score,
        rank: e.rank,
    }
}

impl Cap<'_, StorageCtx> {
    /// `set` (no `expected`) and `set-if`: checks the arguments, writes under
    /// the quota, and records the write when there was one.
    async fn write(
        &mut self,
        call: &'static str,
        key: String,
        expected: Option<Option<String>>,
        value: String,
    ) -> Result<bool, Error> {
        self.calls.begin(Capability::Storage, call)?;
        let checked = check_key(&key).and_then(|()| Ok(limits::check_value(&value)?));
        let result = match checked {
            Ok(()) => self
                .ctx
                .store
                .kv_set_if(
                    &self.ctx.scope,
                    &key,
                    expected.as_ref().map(Option::as_deref),
                    &value,
                    self.calls.grant.storage,
                )
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(call, result, |&written| {
            written.then(|| Effect::StorageSet {
                key: key.clone(),
                bytes: value.len(),
            })
        })
    }
}

impl Host for Cap<'_, StorageCtx> {
    async fn get(&mut self, key: String) -> Result<Option<String>, Error> {
        const CALL: &str = "storage.get";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) => self
                .ctx
                .store
                .kv_get(&self.ctx.scope, &key)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |_| None)
    }

    async fn set(&mut self, key: String, value: String) -> Result<(), Error> {
        self.write("storage.set", key, None, value)
            .await
            .map(|_| ())
    }

    async fn set_if(
        &mut self,
        key: String,
        expected: Option<String>,
        value: String,
    ) -> Result<bool, Error> {
        self.write("storage.set-if", key, Some(expected), value)
            .await
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        const CALL: &str = "storage.delete";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) => self
                .ctx
                .store
                .kv_delete(&self.ctx.scope, &key)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |&existed| {
            existed.then(|| Effect::StorageDeleted { key: key.clone() })
        })
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        const CALL: &str = "storage.increment";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_key(&key) {
            Ok(()) => self
                .ctx
                .store
                .kv_increment(&self.ctx.scope, &key, delta, self.calls.grant.storage)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |&value| {
            Some(Effect::StorageIncremented {
                key: key.clone(),
                value,
            })
        })
    }

    async fn list_prefix(&mut self, prefix: String, limit: u32) -> Result<Vec<Entry>, Error> {
        const CALL: &str = "storage.list-prefix";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_limit(limit, limits::MAX_LIST) {
            Ok(()) => self
                .ctx
                .store
                .kv_list(&self.ctx.scope, &prefix, limit)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        let result = result.map(|rows| {
            rows.into_iter()
                .map(|(key, value)| Entry { key, value })
                .collect()
        });
        self.calls.finish(CALL, result, |_| None)
    }

    async fn board_increment(
        &mut self,
        board: String,
        subject: u64,
        delta: i64,
    ) -> Result<i64, Error> {
        const CALL: &str = "storage.board-increment";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .ctx
                .store
                .board_increment(
                    &self.ctx.scope,
                    &board,
                    subject,
                    delta,
                    self.calls.grant.storage,
                )
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |&score| {
            Some(Effect::ScoreChanged {
                board: board.clone(),
                subject,
                score,
            })
        })
    }

    async fn board_set(&mut self, board: String, subject: u64, score: i64) -> Result<(), Error> {
        const CALL: &str = "storage.board-set";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .ctx
                .store
                .board_set(
                    &self.ctx.scope,
                    &board,
                    subject,
                    score,
                    self.calls.grant.storage,
                )
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |_| {
            Some(Effect::ScoreChanged {
                board: board.clone(),
                subject,
                score,
            })
        })
    }

    async fn board_remove(&mut self, board: String, subject: u64) -> Result<bool, Error> {
        const CALL: &str = "storage.board-remove";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .ctx
                .store
                .board_remove(&self.ctx.scope, &board, subject)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls.finish(CALL, result, |&existed| {
            existed.then(|| Effect::ScoreRemoved {
                board: board.clone(),
                subject,
            })
        })
    }

    async fn board_top(&mut self, board: String, limit: u32) -> Result<Vec<ScoreEntry>, Error> {
        const CALL: &str = "storage.board-top";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board).and_then(|()| check_limit(limit, limits::MAX_TOP)) {
            Ok(()) => self
                .ctx
                .store
                .board_top(&self.ctx.scope, &board, limit)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        let result = result.map(|entries| entries.into_iter().map(score).collect());
        self.calls.finish(CALL, result, |_| None)
    }

    async fn board_rank(
        &mut self,
        board: String,
        subject: u64,
    ) -> Result<Option<ScoreEntry>, Error> {
        const CALL: &str = "storage.board-rank";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match check_board(&board) {
            Ok(()) => self
                .ctx
                .store
                .board_rank(&self.ctx.scope, &board, subject)
                .await
                .map_err(Error::from),
            Err(e) => Err(e),
        };
        self.calls
            .finish(CALL, result.map(|e| e.map(score)), |_| None)
    }
}
