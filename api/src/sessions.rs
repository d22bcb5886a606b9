//! Whether a login session has been revoked (logout, or a refresh token presented twice), for the
//! access tokens that name it in `sid`.
//!
//! The database is the truth (the session's refresh-token family); each node remembers an answer
//! for `auth.session_check_secs`, so revocation reaches every node within that long without a query
//! per request, and the node that revoked knows at once. Remembered answers are bounded: past
//! [`MAX_REMEMBERED`], the stale ones are forgotten.

use std::time::{Duration, Instant};

use dashmap::DashMap;
use ferrocast_core::db::refresh_tokens;
use ferrocast_core::{Db, DbError};

/// Sessions remembered at once before stale answers are swept (each costs about 100 bytes).
const MAX_REMEMBERED: usize = 100_000;

pub struct SessionRevocations {
    recheck_after: Duration,
    /// How long an access token lives: a revoked session need not be remembered longer.
    token_ttl: Duration,
    answers: DashMap<String, Answer>,
}

#[derive(Clone, Copy)]
struct Answer {
    revoked: bool,
    checked: Instant,
}

impl SessionRevocations {
    pub fn new(recheck_after: Duration, token_ttl: Duration) -> Self {
        Self { recheck_after, token_ttl, answers: DashMap::new() }
    }

    /// Whether session `sid` is revoked, from memory when the answer is fresh enough.
    pub async fn is_revoked(&self, db: &Db, sid: &str) -> Result<bool, DbError> {
        let now = Instant::now();
        if let Some(answer) = self.answers.get(sid).map(|a| *a) {
            // A revocation is final: it never needs asking again.
            if answer.revoked || now.duration_since(answer.checked) < self.recheck_after {
                return Ok(answer.revoked);
            }
        }
        let revoked = refresh_tokens::family_revoked(db, sid).await?;
        self.remember(sid, revoked, now);
        Ok(revoked)
    }

    /// Records a revocation made by this node, effective here at once.
    pub fn revoked(&self, sid: &str) {
        self.remember(sid, true, Instant::now());
    }

    fn remember(&self, sid: &str, revoked: bool, now: Instant) {
        if self.answers.len() >= MAX_REMEMBERED {
            // Revoked sessions are kept for as long as their access tokens could live; the rest
            // are asked again anyway once stale.
            let keep_revoked = self.token_ttl.max(self.recheck_after);
            self.answers.retain(|_, a| now.duration_since(a.checked) < if a.revoked { keep_revoked } else { self.recheck_after });
        }
        self.answers.insert(sid.to_string(), Answer { revoked, checked: now });
    }
}
