//! The audit trail's tamper evidence: the hash chain that links every audit record to its
//! predecessor, the signed checkpoints that vouch for the chain's head from time to time, and
//! the verification that walks the chain and names the first record that was edited, deleted or
//! put out of order. Pure: the store feeds the records in; nothing here reads or writes.
//!
//! Record `n` (its `seq`, from 1) carries `prev_hash`, the hash of record `n - 1` (the anchor's
//! hash for the first), and `hash = SHA-256("steward-audit-chain/v1" ‖ prev_hash ‖ n ‖ every
//! stored column)`, each column length-prefixed so no two records encode alike. Anyone can
//! recompute the chain; only the holder of the checkpoint key can sign a checkpoint, so a chain
//! rewritten from an edit onwards no longer matches the next signed checkpoint.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::extension::{hex, hmac_hex};

/// The hash the first record's `prev_hash` carries when nothing was pruned before it.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every stored column of one audit record, exactly as stored (text, timestamps in unix
/// microseconds): what the chain vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub id: String,
    pub at: i64,
    pub activity: String,
    pub display_name: String,
    pub category: String,
    pub initiator: String,
    pub ip_address: Option<String>,
    pub target_type: String,
    pub target_id: String,
    pub correlation_id: String,
    pub result: String,
    pub detail: Option<String>,
    pub modified_properties: Option<String>,
}

/// The hash of the record at `seq` whose predecessor's hash is `prev_hash`, as lowercase hex.
pub fn link_hash(prev_hash: &str, seq: i64, r: &Record) -> String {
    let mut h = Sha256::new();
    h.update(b"steward-audit-chain/v1");
    let at = r.at.to_string();
    let seq = seq.to_string();
    let fields: [Option<&str>; 15] = [
        Some(prev_hash),
        Some(&seq),
        Some(&r.id),
        Some(&at),
        Some(&r.activity),
        Some(&r.display_name),
        Some(&r.category),
        Some(&r.initiator),
        r.ip_address.as_deref(),
        Some(&r.target_type),
        Some(&r.target_id),
        Some(&r.correlation_id),
        Some(&r.result),
        r.detail.as_deref(),
        r.modified_properties.as_deref(),
    ];
    for f in fields {
        match f {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
    hex(&h.finalize())
}

/// One chained record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub record: Record,
}

/// Chains `records` (in the order given) after the link at `head_seq` with `head_hash`.
pub fn chain(head_seq: i64, head_hash: &str, records: Vec<Record>) -> Vec<Link> {
    let mut prev = head_hash.to_owned();
    let mut out = Vec::with_capacity(records.len());
    for (seq, record) in (head_seq.saturating_add(1)..).zip(records) {
        let hash = link_hash(&prev, seq, &record);
        out.push(Link { seq, prev_hash: std::mem::replace(&mut prev, hash.clone()), hash, record });
    }
    out
}

/// The key that signs checkpoints: derived from Steward's `secrets_key`, never stored.
#[derive(Clone)]
pub struct CheckpointKey([u8; 32]);

impl CheckpointKey {
    /// The checkpoint key of a deployment whose secrets key is `secret`.
    pub fn derive(secret: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"steward-audit-checkpoint-key/v1");
        h.update(secret);
        Self(h.finalize().into())
    }

    /// A short public name of the key, kept with each checkpoint, so a checkpoint signed with
    /// another key is told apart from a forged one.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        hex(digest.get(..8).unwrap_or_default())
    }

    /// The signature of a checkpoint vouching that record `seq` has `hash` at `at`.
    pub fn sign(&self, seq: i64, hash: &str, at: i64) -> String {
        let message = format!("steward-audit-checkpoint/v1\n{seq}\n{hash}\n{at}");
        // A 32-byte key always suits HMAC-SHA256.
        hmac_hex(&self.0, &[message.as_bytes()]).unwrap_or_default()
    }
}

impl fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointKey({})", self.fingerprint())
    }
}

/// A checkpoint: the chain's head at one moment, signed when a key was configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: i64,
    /// `None` when the checkpoint was taken without a key.
    pub signature: Option<String>,
    pub key_fingerprint: Option<String>,
}

impl Checkpoint {
    pub fn new(seq: i64, hash: &str, at: i64, key: Option<&CheckpointKey>) -> Self {
        Self {
            seq,
            hash: hash.to_owned(),
            at,
            signature: key.map(|k| k.sign(seq, hash, at)),
            key_fingerprint: key.map(CheckpointKey::fingerprint),
        }
    }
}

/// Where a verification starts: before the first record, or after the last pruned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

impl Default for Anchor {
    fn default() -> Self {
        Self { seq: 0, hash: GENESIS.to_owned() }
    }
}

/// What a verification found wrong: the first place where the stored trail is not what was
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tamper {
    /// The record's columns no longer give its hash.
    Edited { seq: i64, id: String },
    /// Records `from..=to` are missing; `next` is the first record after the gap, if any.
    Deleted { from: i64, to: i64, next: Option<(i64, String)> },
    /// The record does not follow its predecessor: it carries the hash of another record, so it
    /// was moved or inserted here.
    OutOfOrder { seq: i64, id: String },
    /// The chain up to `seq` is not what the checkpoint taken then recorded: records at or
    /// before it were rewritten, hashes and all.
    CheckpointMismatch { seq: i64 },
    /// A checkpoint's signature is not the key's: the checkpoint was forged or edited.
    BadSignature { seq: i64 },
    /// The last records were deleted: a checkpoint vouches for record `vouched`, the trail ends
    /// at `last`.
    Truncated { last: i64, vouched: i64 },
    /// The trail starts after record `seq` (the records before it were pruned), but no
    /// checkpoint (signed, when a key is given) vouches for that record: records were deleted
    /// from the trail's start.
    UnvouchedAnchor { seq: i64 },
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Edited { seq, id } => {
                write!(f, "record {seq} (audit event {id}) was edited: its content no longer matches its hash")
            }
            Self::Deleted { from, to, next } => {
                let which = if from == to { format!("record {from} is") } else { format!("records {from}–{to} are") };
                match next {
                    Some((seq, id)) => {
                        write!(f, "{which} missing (deleted); the trail resumes at record {seq} (audit event {id})")
                    }
                    None => write!(f, "{which} missing (deleted)"),
                }
            }
            Self::OutOfOrder { seq, id } => write!(
                f,
                "record {seq} (audit event {id}) is out of order: it does not carry the hash of record {}, \
                 so it was moved or inserted there",
                seq.saturating_sub(1)
            ),
            Self::CheckpointMismatch { seq } => write!(
                f,
                "the trail up to record {seq} is not what the checkpoint taken then recorded: \
                 records at or before {seq} were rewritten"
            ),
            Self::BadSignature { seq } => {
                write!(
                    f,
                    "the checkpoint at record {seq} has a signature this key did not make: it was forged or edited"
                )
            }
            Self::UnvouchedAnchor { seq } => write!(
                f,
                "the trail starts after record {seq}, but no checkpoint vouches for record {seq}: \
                 records were deleted from its start"
            ),
            Self::Truncated { last, vouched } => write!(
                f,
                "records after {last} were deleted: a checkpoint vouches for record {vouched}, the trail ends at {last}"
            ),
        }
    }
}

/// What an intact chain holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    pub records: u64,
    pub last_seq: i64,
    pub checkpoints: u64,
    /// Checkpoints whose signature was checked with the key.
    pub signed_checkpoints: u64,
}

/// Walks a chain record by record (in `seq` order), checking each against its predecessor and
/// the checkpoints as it passes them.
#[derive(Debug)]
pub struct Verifier {
    expected: i64,
    prev: String,
    records: u64,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    key: Option<CheckpointKey>,
    signed: u64,
    /// What is wrong with the anchor itself, reported first.
    anchor_error: Option<Tamper>,
}

impl Verifier {
    /// A verifier starting after `anchor`, checking `checkpoints` (any order) and, with `key`,
    /// their signatures (checkpoints signed with another key, or unsigned ones, are then
    /// refused as forged). An anchor after pruning must be vouched for by the checkpoint taken
    /// at it.
    pub fn new(anchor: Anchor, mut checkpoints: Vec<Checkpoint>, key: Option<CheckpointKey>) -> Self {
        let anchor_error = (anchor.seq > 0)
            .then(|| {
                let vouched = checkpoints
                    .iter()
                    .any(|c| c.seq == anchor.seq && c.hash == anchor.hash && signature_ok(key.as_ref(), c).is_ok());
                (!vouched).then_some(Tamper::UnvouchedAnchor { seq: anchor.seq })
            })
            .flatten();
        checkpoints.retain(|c| c.seq > anchor.seq);
        checkpoints.sort_by_key(|c| c.seq);
        Self {
            expected: anchor.seq.saturating_add(1),
            prev: anchor.hash,
            records: 0,
            checkpoints,
            next_checkpoint: 0,
            key,
            signed: 0,
            anchor_error,
        }
    }

    /// Checks the next stored record.
    pub fn feed(&mut self, link: &Link) -> Result<(), Tamper> {
        if let Some(e) = &self.anchor_error {
            return Err(e.clone());
        }
        if link.seq != self.expected {
            if link.seq > self.expected {
                return Err(Tamper::Deleted {
                    from: self.expected,
                    to: link.seq.saturating_sub(1),
                    next: Some((link.seq, link.record.id.clone())),
                });
            }
            // A seq at or below one already seen cannot come from a store walking a unique
            // column in order; treat it as a record put where it does not belong.
            return Err(Tamper::OutOfOrder { seq: link.seq, id: link.record.id.clone() });
        }
        if link.prev_hash != self.prev {
            return Err(Tamper::OutOfOrder { seq: link.seq, id: link.record.id.clone() });
        }
        if link_hash(&link.prev_hash, link.seq, &link.record) != link.hash {
            return Err(Tamper::Edited { seq: link.seq, id: link.record.id.clone() });
        }
        self.check_checkpoints(link.seq, &link.hash)?;
        self.prev.clone_from(&link.hash);
        self.expected = link.seq.saturating_add(1);
        self.records += 1;
        Ok(())
    }

    fn check_checkpoints(&mut self, seq: i64, hash: &str) -> Result<(), Tamper> {
        while let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            if c.seq > seq {
                break;
            }
            // A checkpoint for a seq the walk skipped cannot happen: gaps fail first.
            self.signed += signature_ok(self.key.as_ref(), c)?;
            if c.hash != hash {
                return Err(Tamper::CheckpointMismatch { seq: c.seq });
            }
            self.next_checkpoint += 1;
        }
        Ok(())
    }

    /// Ends the walk: checkpoints beyond the last record mean the trail was cut short.
    pub fn finish(self) -> Result<Verified, Tamper> {
        if let Some(e) = self.anchor_error {
            return Err(e);
        }
        let last = self.expected.saturating_sub(1);
        let vouched = self.checkpoints.get(self.next_checkpoint..).unwrap_or_default();
        for c in vouched {
            signature_ok(self.key.as_ref(), c)?;
        }
        if let Some(c) = vouched.last() {
            return Err(Tamper::Truncated { last, vouched: c.seq });
        }
        Ok(Verified {
            records: self.records,
            last_seq: last,
            checkpoints: self.checkpoints.len() as u64,
            signed_checkpoints: self.signed,
        })
    }
}

/// With a key, whether the checkpoint's signature is the key's (1 when checked, 0 without a
/// key); a checkpoint the key did not sign is forged.
fn signature_ok(key: Option<&CheckpointKey>, c: &Checkpoint) -> Result<u64, Tamper> {
    let Some(key) = key else { return Ok(0) };
    match &c.signature {
        Some(s) if *s == key.sign(c.seq, &c.hash, c.at) => Ok(1),
        _ => Err(Tamper::BadSignature { seq: c.seq }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Record {
        Record {
            id: format!("e-{i}"),
            at: 1_700_000_000_000_000 + i as i64,
            activity: "Approve".into(),
            display_name: "Approve access package assignment request".into(),
            category: "EntitlementManagement".into(),
            initiator: r#"{"user":"u-1"}"#.into(),
            ip_address: Some("127.0.0.1".into()),
            target_type: "AccessPackageAssignmentRequest".into(),
            target_id: format!("r-{i}"),
            correlation_id: format!("r-{i}"),
            result: "success".into(),
            detail: i.is_multiple_of(2).then(|| "stage 1".into()),
            modified_properties: None,
        }
    }

    fn trail(n: usize) -> Vec<Link> {
        chain(0, GENESIS, (1..=n).map(record).collect())
    }

    fn verify(links: &[Link], checkpoints: Vec<Checkpoint>, key: Option<CheckpointKey>) -> Result<Verified, Tamper> {
        let mut v = Verifier::new(Anchor::default(), checkpoints, key);
        for l in links {
            v.feed(l)?;
        }
        v.finish()
    }

    fn key() -> CheckpointKey {
        CheckpointKey::derive(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn an_untouched_chain_verifies_with_its_checkpoints() {
        let links = trail(10);
        let k = key();
        let cps =
            vec![Checkpoint::new(4, &links[3].hash, 1, Some(&k)), Checkpoint::new(10, &links[9].hash, 2, Some(&k))];
        let v = verify(&links, cps, Some(k)).unwrap();
        assert_eq!((v.records, v.last_seq, v.checkpoints, v.signed_checkpoints), (10, 10, 2, 2));
        // Chaining in two goes gives the same links as in one.
        let first = chain(0, GENESIS, (1..=4).map(record).collect());
        let rest = chain(4, &first[3].hash, (5..=10).map(record).collect());
        assert_eq!([first, rest].concat(), links);
    }

    #[test]
    fn every_column_is_covered_and_null_differs_from_empty() {
        let base = record(1);
        let h = |r: &Record| link_hash(GENESIS, 1, r);
        let mut variants = vec![];
        let mut r = base.clone();
        r.detail = Some(String::new());
        variants.push(r);
        let mut r = base.clone();
        r.ip_address = None;
        variants.push(r);
        let mut r = base.clone();
        r.at += 1;
        variants.push(r);
        let mut r = base.clone();
        // Moving text between adjacent columns changes the hash: fields are length-prefixed.
        r.target_type = "AccessPackageAssignmentRequestr-1".into();
        r.target_id = String::new();
        variants.push(r);
        for v in &variants {
            assert_ne!(h(v), h(&base), "{v:?}");
        }
        assert_ne!(link_hash(GENESIS, 2, &base), h(&base), "the seq is covered");
    }

    #[test]
    fn an_edit_names_the_edited_record() {
        let mut links = trail(6);
        links[2].record.detail = Some("approved by someone else".into());
        assert_eq!(verify(&links, vec![], None), Err(Tamper::Edited { seq: 3, id: "e-3".into() }));
    }

    #[test]
    fn a_deletion_names_the_gap_and_where_the_trail_resumes() {
        let mut links = trail(6);
        links.remove(3);
        let err = verify(&links, vec![], None).unwrap_err();
        assert_eq!(err, Tamper::Deleted { from: 4, to: 4, next: Some((5, "e-5".into())) });
        assert!(err.to_string().contains("record 4 is missing"), "{err}");
    }

    #[test]
    fn swapped_records_are_out_of_order() {
        let mut links = trail(6);
        // Exchange the seq of records 2 and 5, as an UPDATE of the column would.
        links.swap(1, 4);
        links[1].seq = 2;
        links[4].seq = 5;
        assert_eq!(verify(&links, vec![], None), Err(Tamper::OutOfOrder { seq: 2, id: "e-5".into() }));
    }

    #[test]
    fn a_rewritten_chain_fails_at_the_signed_checkpoint() {
        let links = trail(8);
        let k = key();
        let cps = vec![Checkpoint::new(8, &links[7].hash, 1, Some(&k))];
        let mut forged: Vec<Record> = links.iter().map(|l| l.record.clone()).collect();
        forged[2].detail = Some("edited".into());
        let rewritten = chain(0, GENESIS, forged);
        assert_eq!(verify(&rewritten, cps.clone(), Some(k.clone())), Err(Tamper::CheckpointMismatch { seq: 8 }));
        // Re-making the checkpoint without the key does not help.
        let fake = vec![Checkpoint { signature: Some("00".into()), ..Checkpoint::new(8, &rewritten[7].hash, 1, None) }];
        assert_eq!(verify(&rewritten, fake, Some(k)), Err(Tamper::BadSignature { seq: 8 }));
    }

    #[test]
    fn deleting_the_last_records_is_caught_by_a_checkpoint() {
        let links = trail(8);
        let cps = vec![Checkpoint::new(8, &links[7].hash, 1, None)];
        assert_eq!(verify(&links[..6], cps, None), Err(Tamper::Truncated { last: 6, vouched: 8 }));
    }

    #[test]
    fn a_pruned_trail_verifies_from_its_vouched_anchor() {
        let links = trail(8);
        let k = key();
        let anchor = Anchor { seq: 3, hash: links[2].hash.clone() };
        let vouch = Checkpoint::new(3, &links[2].hash, 1, Some(&k));
        let mut v = Verifier::new(anchor.clone(), vec![vouch.clone()], Some(k.clone()));
        for l in &links[3..] {
            v.feed(l).unwrap();
        }
        assert_eq!(v.finish().unwrap().records, 5);
        // Without the checkpoint, or with one the key did not sign, the anchor is not vouched
        // for: someone deleted the start and moved the anchor.
        let unvouched = Tamper::UnvouchedAnchor { seq: 3 };
        assert_eq!(Verifier::new(anchor.clone(), vec![], Some(k.clone())).finish(), Err(unvouched.clone()));
        let forged = Checkpoint { signature: Some("00".into()), ..vouch };
        let mut v = Verifier::new(anchor, vec![forged], Some(k));
        assert_eq!(v.feed(&links[3]), Err(unvouched));
    }

    #[test]
    fn the_key_never_shows() {
        let shown = format!("{:?}", key());
        assert!(shown.starts_with("CheckpointKey(") && shown.len() < 40, "{shown}");
        assert_ne!(CheckpointKey::derive(b"a").fingerprint(), CheckpointKey::derive(b"b").fingerprint());
    }
}
