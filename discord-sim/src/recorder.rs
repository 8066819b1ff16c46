//! Every REST request the simulator received, in arrival order, with the status it
//! was answered — including 401s, 429s and injected 5xx — so tests can assert on
//! exactly what the bot asked Discord to do (and how often it retried).

use serde_json::Value;
use std::sync::Mutex;
use std::time::Instant;

/// One REST request.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Without `/api/v10` and the query string, percent-decoded:
    /// `/channels/5/messages`, `/channels/5/messages/6/reactions/👍/@me`.
    pub path: String,
    /// The JSON body (for multipart requests: the `payload_json` part).
    pub body: Option<Value>,
    /// `X-Audit-Log-Reason`, percent-decoded.
    pub audit_reason: Option<String>,
    /// The status answered; 0 while the request is still being handled.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

#[derive(Debug, Default)]
pub struct Recorder {
    entries: Mutex<Vec<Recorded>>,
}

impl Recorder {
    /// Notes a request on arrival; returns its index for [`Recorder::finish`].
    pub fn start(&self, r: Recorded) -> usize {
        let mut e = self.entries.lock().expect("recorder");
        e.push(r);
        e.len() - 1
    }

    pub fn finish(&self, index: usize, status: u16) {
        if let Some(r) = self.entries.lock().expect("recorder").get_mut(index) {
            r.status = status;
        }
    }

    pub fn all(&self) -> Vec<Recorded> {
        self.entries.lock().expect("recorder").clone()
    }
}
