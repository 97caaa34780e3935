//! What each side of a comparison is sent: the gateway and the hello server the same
//! purchases, cycled; the naive gateway a fresh buyer per request, so every request does the
//! whole reservation.

use bytes::{BufMut as _, BytesMut};

use crate::args::Target;
use crate::engine::{Kind, Prepared};
use crate::requests::{self, Users};

use super::CompareArgs;
use super::subject::{Role, Subject};

/// The requests every side is sent in every round, built once before the clock.
pub(super) struct Purchases {
    /// The gateway's (and the hello server's) purchases, by `users` distinct buyers.
    gateway: Vec<Prepared>,
    /// Distinct buyers of the naive gateway per round.
    naive_users: u32,
}

impl Purchases {
    pub(super) fn new(args: &CompareArgs, target: &Target) -> Self {
        let users = Users::new(target.config.auth.jwt_secret.expose(), &args.user_prefix);
        let gateway = (0..u64::from(args.users.max(1)))
            .map(|n| Prepared {
                kind: Kind::Purchase,
                bytes: requests::purchase(&users.bearer(n), &target.campaign.id, None),
            })
            .collect();
        Self {
            gateway,
            naive_users: args.naive_users.max(1),
        }
    }

    /// What `subject` is sent in `round`.
    pub(super) fn for_side(&self, subject: &Subject, round: u32) -> Vec<Prepared> {
        if subject.kind == Role::Naive {
            naive_requests(round, self.naive_users)
        } else {
            self.gateway.clone()
        }
    }
}

/// `POST /buy/<user>` for `count` distinct users of `round`, in one buffer.
fn naive_requests(round: u32, count: u32) -> Vec<Prepared> {
    const HEAD: &[u8] = b" HTTP/1.1\r\nhost: flashgate\r\ncontent-length: 0\r\n\r\n";
    let mut buffer = BytesMut::with_capacity(count as usize * (HEAD.len() + 32));
    (0..count)
        .map(|n| {
            buffer.put_slice(format!("POST /buy/r{round}-u{n}").as_bytes());
            buffer.put_slice(HEAD);
            Prepared {
                kind: Kind::Purchase,
                bytes: buffer.split().freeze(),
            }
        })
        .collect()
}
