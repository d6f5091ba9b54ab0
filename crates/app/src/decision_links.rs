//! One-click decisions from email (`steward_domain::decision_link`): minting an approver's
//! approve and deny links, and using one — the signature, the expiry, the approver being the
//! one signed in, and single use (the nonce recorded), before the decision is recorded through
//! the same use case as any other approval, with its conditions (MFA) and its concurrency.

use jiff::{SignedDuration, Timestamp};
use steward_domain::decision_link::{DecisionLink, LinkError};
use steward_domain::ids::{RequestId, UserId};

use crate::{AppError, Services};

/// How long a decision link works when nothing shorter is known.
pub const VALID_FOR: SignedDuration = SignedDuration::from_hours(14 * 24);

/// An approver's two links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionUrls {
    pub approve: String,
    pub deny: String,
}

/// The approve and deny links for `approver` on `request`, working until `expires`; `None`
/// without a link key or a public URL (the mail then links to the approval page).
pub fn urls(s: &Services, request: RequestId, approver: UserId, expires: Timestamp) -> Option<DecisionUrls> {
    let key = s.decision_key.as_ref()?;
    let base = s.public_url.as_deref()?;
    let url = |approve: bool| {
        let link = DecisionLink {
            request,
            approver,
            approve,
            expires: expires.as_second(),
            nonce: uuid::Uuid::new_v4().to_string(),
        };
        format!("{base}/approvals/{request}/link?t={}", link.token(key))
    };
    Some(DecisionUrls { approve: url(true), deny: url(false) })
}

/// Checks a link's token for `me` at `now`: signed by this deployment, not expired, sent to
/// `me` and about `request`. Whether it was used is checked when it is used (`Store`).
pub fn check(s: &Services, request: RequestId, me: UserId, token: &str) -> Result<DecisionLink, AppError> {
    let key =
        s.decision_key.as_ref().ok_or_else(|| AppError::Invalid("One-click links are not enabled here.".into()))?;
    let link = DecisionLink::check(token, key, s.clock.now().as_second()).map_err(|e| match e {
        LinkError::Expired => AppError::Invalid(e.to_string()),
        LinkError::Malformed | LinkError::Altered => AppError::Invalid(e.to_string()),
    })?;
    if link.request != request {
        return Err(AppError::Invalid(LinkError::Altered.to_string()));
    }
    if link.approver != me {
        return Err(AppError::Forbidden("This link was sent to another approver.".into()));
    }
    Ok(link)
}

/// What a used link says.
pub const USED: &str = "This link was used already: each approve or deny link works once.";

/// Records `me`'s decision through a link: checked as `check` does, refused when used
/// already, then decided on the stage that waits for `me` as any approval is (with the
/// policy's conditions on `facts`, and one outcome when two try at once), and the link
/// recorded as used. Returns whether it approved.
pub async fn decide(
    s: &Services,
    me: crate::auth::UserCap,
    facts: Option<&crate::identity::SignInFacts>,
    request: RequestId,
    token: &str,
    justification: Option<String>,
) -> Result<bool, AppError> {
    let link = check(s, request, me.id(), token)?;
    if s.store.decision_link_used(&link.nonce).await? {
        return Err(AppError::Conflict(USED.into()));
    }
    let r = s.store.get_request(request).await?.ok_or_else(|| AppError::not_found("request", request))?;
    let Some((_, stage)) = crate::lifecycle::approvals::waiting_stage(&r, me.id()) else {
        return Err(AppError::Conflict(
            "Nothing on this request waits for your decision any more: it was decided, cancelled or timed out.".into(),
        ));
    };
    let stage = stage.id;
    crate::lifecycle::approvals::decide(s, me, facts, request, stage, link.approve, justification).await?;
    // The decision is recorded; a second use of the link finds it used (or, had this failed,
    // finds the stage decided).
    s.store.use_decision_link(&link.nonce, request, me.id(), s.clock.now()).await?;
    Ok(link.approve)
}
