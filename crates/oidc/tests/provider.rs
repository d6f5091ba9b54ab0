//! steward-oidc against a real OpenID Connect provider (`tests/oidc/provider.py`, authlib, on
//! loopback): discovery, access tokens signed with RS256 and ES256, key rotation and the JWKS
//! refetch rate limit, forged and out-of-time tokens, and the authorization-code sign-in with
//! PKCE, state, nonce and step-up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use steward_oidc::{
    DiscoveryError, PendingSignIn, Provider, ProviderConfig, SignInError, SignInOptions, TokenError, http_client,
};
use steward_testpeers::{MintOptions, OidcProvider};

const REDIRECT: &str = "http://127.0.0.1:9/auth/callback";

/// The wall clock: the provider stamps its tokens with it.
#[allow(clippy::disallowed_methods)]
fn now() -> Timestamp {
    Timestamp::now()
}

fn users() -> Value {
    json!({
        "alice": {
            "sub": "u-alice", "oid": "00000000-0000-0000-0000-00000000a11c", "tid": "tenant-1",
            "email": "alice@example.test", "upn": "alice@example.test", "name": "Alice Example",
            "department": "Finance", "groups": ["g-finance", "g-all"], "amr": ["pwd"],
            "acr": "urn:steward:test:pwd", "deviceCompliant": true, "userType": "Member"
        },
        "bob": {"sub": "u-bob", "email": "bob@example.test", "name": "Bob", "department": "Sales",
                "groups": ["g-all"], "userType": "Guest"}
    })
}

fn config(peer: &OidcProvider) -> ProviderConfig {
    ProviderConfig::new(peer.issuer(), peer.client_id())
        .with_client_secret(SecretString::from(peer.client_secret().to_owned()))
        .with_audience([peer.api_audience().to_owned(), peer.client_id().to_owned()])
}

async fn start() -> (OidcProvider, Provider) {
    let peer = OidcProvider::start(&users());
    let provider = Provider::discover(config(&peer), client()).await.unwrap();
    (peer, provider)
}

fn client() -> reqwest::Client {
    http_client(std::time::Duration::from_secs(10)).unwrap()
}

fn later(seconds: i64) -> Timestamp {
    now() + SignedDuration::from_secs(seconds)
}

#[tokio::test]
async fn discovery_reads_the_endpoints_and_the_keys() {
    let (peer, provider) = start().await;
    let m = provider.metadata();
    assert_eq!(m.issuer, peer.issuer());
    assert_eq!(m.authorization_endpoint.as_str(), format!("{}/authorize", peer.issuer()));
    assert_eq!(m.token_endpoint.as_str(), format!("{}/token", peer.issuer()));
    assert_eq!(m.userinfo_endpoint.as_ref().unwrap().as_str(), format!("{}/userinfo", peer.issuer()));
    assert_eq!(m.end_session_endpoint.as_ref().unwrap().as_str(), format!("{}/logout", peer.issuer()));
    assert_eq!(provider.jwks_uri().as_str(), format!("{}/jwks", peer.issuer()));
    assert_eq!(provider.jwks_fetches(), 1);
    assert_eq!(peer.jwks_requests().await, 1);
}

#[tokio::test]
async fn discovery_refuses_a_document_naming_another_issuer() {
    let peer = OidcProvider::start(&users());
    peer.configure(json!({"discovery_issuer": "http://127.0.0.1:1"})).await;
    match Provider::discover(config(&peer), client()).await {
        Err(DiscoveryError::IssuerMismatch { expected, found }) => {
            assert_eq!(expected, peer.issuer());
            assert_eq!(found, "http://127.0.0.1:1");
        }
        other => panic!("{other:?}"),
    }
    // A trailing slash is another issuer too.
    peer.configure(json!({"discovery_issuer": format!("{}/", peer.issuer())})).await;
    assert!(matches!(Provider::discover(config(&peer), client()).await, Err(DiscoveryError::IssuerMismatch { .. })));
}

#[tokio::test]
async fn discovery_never_follows_a_redirect() {
    let peer = OidcProvider::start(&users());
    let elsewhere = OidcProvider::start(&users());
    peer.configure(json!({"discovery_redirect": format!("{}/.well-known/openid-configuration", elsewhere.issuer())}))
        .await;
    let err = Provider::discover(config(&peer), client()).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("redirect"), "{err}");
    // Even a client that would follow redirects is refused the redirected answer.
    let following = reqwest::Client::new();
    let err = Provider::discover(config(&peer), following).await.unwrap_err();
    assert!(err.to_string().contains("redirect"), "{err}");
}

#[tokio::test]
async fn an_unreachable_provider_is_reported() {
    let port = steward_testpeers::free_port();
    let cfg = ProviderConfig::new(format!("http://127.0.0.1:{port}"), "steward");
    assert!(matches!(Provider::discover(cfg, client()).await, Err(DiscoveryError::Unavailable(_))));
}

#[tokio::test]
async fn rs256_and_es256_access_tokens_are_verified() {
    let (peer, provider) = start().await;
    for alg in ["RS256", "ES256"] {
        let token = peer.mint(MintOptions { alg: Some(alg.into()), ..MintOptions::user("alice") }).await;
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["alg"], alg);
        let t = provider.verify_access_token(&token, now()).await.unwrap();
        assert_eq!(t.sub, "u-alice");
        assert_eq!(t.preferred_username.as_deref(), Some("alice"));
        assert_eq!(t.email.as_deref(), Some("alice@example.test"));
        assert_eq!(t.upn.as_deref(), Some("alice@example.test"));
        assert_eq!(t.name.as_deref(), Some("Alice Example"));
        assert_eq!(t.oid.as_deref(), Some("00000000-0000-0000-0000-00000000a11c"));
        assert_eq!(t.tid.as_deref(), Some("tenant-1"));
        assert_eq!(t.groups, vec!["g-finance", "g-all"]);
        assert_eq!(t.amr, vec!["pwd"]);
        assert_eq!(t.acr.as_deref(), Some("urn:steward:test:pwd"));
        assert_eq!(t.scopes, vec!["openid", "profile", "email"]);
        assert_eq!(t.claim_text("department").as_deref(), Some("Finance"));
        assert_eq!(t.claim("deviceCompliant"), Some(&json!(true)));
        assert_eq!(t.claim_text("userType").as_deref(), Some("Member"));
        assert!(t.exp > now());
    }
    // Tokens carrying another accepted audience are verified too.
    let token =
        peer.mint(MintOptions { audience: Some(json!(["x", peer.client_id()])), ..MintOptions::user("bob") }).await;
    assert_eq!(provider.verify_access_token(&token, now()).await.unwrap().sub, "u-bob");
    // One JWKS fetch served all of that.
    assert_eq!(provider.jwks_fetches(), 1);
}

#[tokio::test]
async fn time_is_the_one_passed_in() {
    let (peer, provider) = start().await;
    let token = peer.mint(MintOptions { lifetime: Some(600), ..MintOptions::user("alice") }).await;
    assert!(provider.verify_access_token(&token, now()).await.is_ok());
    // Within the 60 s leeway after `exp`, then not.
    assert!(provider.verify_access_token(&token, later(600 + 30)).await.is_ok());
    assert_eq!(provider.verify_access_token(&token, later(600 + 61)).await, Err(TokenError::Expired));
    // Before it was issued (beyond the leeway).
    assert_eq!(provider.verify_access_token(&token, later(-120)).await, Err(TokenError::NotYetValid));
}

/// Whether a refusal is the one a case expects.
type Expected = fn(&TokenError) -> bool;

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused() {
    let (peer, provider) = start().await;
    let alice = || MintOptions::user("alice");
    let cases: Vec<(&str, MintOptions, Expected)> = vec![
        ("alg none", MintOptions { alg: Some("none".into()), ..alice() }, |e| {
            matches!(e, TokenError::AlgorithmNotAllowed(_))
        }),
        (
            "HS256 keyed with the RSA public key as PEM",
            MintOptions { alg: Some("HS256".into()), hmac_secret: Some("pem".into()), ..alice() },
            |e| matches!(e, TokenError::AlgorithmNotAllowed(_)),
        ),
        (
            "HS256 keyed with the RSA public key as DER",
            MintOptions { alg: Some("HS256".into()), hmac_secret: Some("der".into()), ..alice() },
            |e| matches!(e, TokenError::AlgorithmNotAllowed(_)),
        ),
        (
            "HS256 keyed with the JWK's JSON",
            MintOptions { alg: Some("HS256".into()), hmac_secret: Some("jwk_json".into()), ..alice() },
            |e| matches!(e, TokenError::AlgorithmNotAllowed(_)),
        ),
        (
            "HS256 keyed with the JWK's modulus bytes",
            MintOptions { alg: Some("HS256".into()), hmac_secret: Some("jwk_n".into()), ..alice() },
            |e| matches!(e, TokenError::AlgorithmNotAllowed(_)),
        ),
        (
            "ES256 naming the RSA key",
            MintOptions { alg: Some("ES256".into()), kid_of: Some("RS256".into()), ..alice() },
            |e| matches!(e, TokenError::AlgorithmNotAllowed(_)),
        ),
        (
            "RS256 naming the EC key",
            MintOptions { alg: Some("RS256".into()), kid_of: Some("ES256".into()), ..alice() },
            |e| matches!(e, TokenError::AlgorithmNotAllowed(_)),
        ),
        ("expired", MintOptions { lifetime: Some(-120), ..alice() }, |e| *e == TokenError::Expired),
        ("not yet valid", MintOptions { not_before: Some(600), ..alice() }, |e| *e == TokenError::NotYetValid),
        ("wrong audience", MintOptions { audience: Some(json!("api://someone-else")), ..alice() }, |e| {
            *e == TokenError::WrongAudience
        }),
        (
            "no audience",
            MintOptions { claims: [("aud".to_owned(), Value::Null)].into_iter().collect(), ..alice() },
            |e| *e == TokenError::WrongAudience,
        ),
        ("wrong issuer", MintOptions { issuer: Some("http://127.0.0.1:1".into()), ..alice() }, |e| {
            *e == TokenError::WrongIssuer
        }),
        (
            "no expiry",
            MintOptions { claims: [("exp".to_owned(), Value::Null)].into_iter().collect(), ..alice() },
            |e| matches!(e, TokenError::Malformed(_)),
        ),
        ("signed with an unpublished key", MintOptions { unpublished_key: true, ..alice() }, |e| {
            *e == TokenError::UnknownKey
        }),
        (
            "signed by the current key, naming an unknown kid",
            MintOptions { kid: Some("no-such-key".into()), ..alice() },
            |e| *e == TokenError::UnknownKey,
        ),
    ];
    for (what, options, expected) in cases {
        let token = peer.mint(options).await;
        let got = provider.verify_access_token(&token, now()).await;
        match &got {
            Err(e) if expected(e) => {
                let message = e.to_string();
                assert!(
                    !message.contains(&token) && !message.contains(token.split('.').nth(1).unwrap()),
                    "{what}: {message}"
                );
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    // A payload changed after signing (here: another subject), the signature kept.
    let token = peer.mint(MintOptions::user("bob")).await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("u-alice");
    claims["groups"] = json!(["g-admins"]);
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");
    assert_eq!(provider.verify_access_token(&tampered, now()).await, Err(TokenError::BadSignature));
    // The signature of another token over this payload.
    let other = peer.mint(MintOptions::user("alice")).await;
    let spliced = format!("{}.{}", token.rsplit_once('.').unwrap().0, other.rsplit('.').next().unwrap());
    assert_eq!(provider.verify_access_token(&spliced, now()).await, Err(TokenError::BadSignature));
    // Not a JWT at all.
    assert!(matches!(provider.verify_access_token("opaque-token", now()).await, Err(TokenError::Malformed(_))));
}

#[tokio::test]
async fn a_new_key_is_fetched_once_and_unknown_kids_are_rate_limited() {
    let (peer, provider) = start().await;
    let before = peer.mint(MintOptions::user("alice")).await;
    assert!(provider.verify_access_token(&before, now()).await.is_ok());
    assert_eq!(provider.jwks_fetches(), 1);

    peer.rotate_keys().await;
    let t0 = now();
    for alg in ["RS256", "ES256"] {
        let token = peer.mint(MintOptions { alg: Some(alg.into()), ..MintOptions::user("alice") }).await;
        assert_eq!(provider.verify_access_token(&token, t0).await.unwrap().sub, "u-alice", "{alg}");
    }
    // The RS256 token's new kid made one refetch, which brought the new ES256 key too.
    assert_eq!(provider.jwks_fetches(), 2);
    assert_eq!(peer.jwks_requests().await, 2);
    // The old key is still published, and still accepted.
    assert!(provider.verify_access_token(&before, t0).await.is_ok());

    // Unknown kids within 30 s of that refetch: refused without asking the provider.
    for _ in 0..5 {
        let forged = peer.mint(MintOptions { unpublished_key: true, ..MintOptions::user("alice") }).await;
        assert_eq!(
            provider.verify_access_token(&forged, t0 + SignedDuration::from_secs(29)).await,
            Err(TokenError::UnknownKey)
        );
    }
    assert_eq!(provider.jwks_fetches(), 2);
    assert_eq!(peer.jwks_requests().await, 2);

    // After the window, one more refetch; the kid is still unknown.
    let forged = peer.mint(MintOptions { unpublished_key: true, ..MintOptions::user("alice") }).await;
    assert_eq!(
        provider.verify_access_token(&forged, t0 + SignedDuration::from_secs(31)).await,
        Err(TokenError::UnknownKey)
    );
    assert_eq!(provider.jwks_fetches(), 3);
    assert_eq!(peer.jwks_requests().await, 3);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_makes_at_most_one_fetch() {
    let (peer, provider) = start().await;
    let mut forged = Vec::new();
    for _ in 0..16 {
        forged.push(
            peer.mint(MintOptions { unpublished_key: true, alg: Some("ES256".into()), ..MintOptions::user("bob") })
                .await,
        );
    }
    let t = now();
    let tasks: Vec<_> = forged
        .into_iter()
        .map(|token| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.verify_access_token(&token, t).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Err(TokenError::UnknownKey));
    }
    assert_eq!(provider.jwks_fetches(), 2);
    assert_eq!(peer.jwks_requests().await, 2);
}

#[tokio::test]
async fn keys_removed_from_the_jwks_stop_being_accepted_after_a_refetch() {
    let (peer, provider) = start().await;
    let old = peer.mint(MintOptions::user("alice")).await;
    peer.rotate_keys().await;
    let new = peer.mint(MintOptions::user("alice")).await;
    let t0 = now();
    assert!(provider.verify_access_token(&new, t0).await.is_ok());
    peer.drop_old_keys().await;
    // Until the JWKS is read again, the cached old key still verifies.
    assert!(provider.verify_access_token(&old, t0).await.is_ok());
    // A token naming yet another key, once the rate limit allows, refreshes the cache.
    peer.rotate_keys().await;
    let newer = peer.mint(MintOptions::user("alice")).await;
    let t1 = t0 + SignedDuration::from_secs(31);
    assert!(provider.verify_access_token(&newer, t1).await.is_ok());
    assert_eq!(provider.verify_access_token(&old, t1).await, Err(TokenError::UnknownKey));
    assert!(provider.verify_access_token(&new, t1).await.is_ok());
    // An explicit refresh does the same at once.
    peer.drop_old_keys().await;
    assert_eq!(provider.refresh_keys(t1).await, Ok(2));
    assert_eq!(provider.verify_access_token(&new, t1).await, Err(TokenError::UnknownKey));
    assert!(provider.verify_access_token(&newer, t1).await.is_ok());
}

async fn sign_in(
    peer: &OidcProvider,
    provider: &Provider,
    options: SignInOptions,
    user: &str,
) -> (PendingSignIn, String, String) {
    let (url, pending) = provider.begin_sign_in(REDIRECT, &options).unwrap();
    let answer = peer.authorize(&url, REDIRECT, user).await;
    (pending, answer.code, answer.state)
}

#[tokio::test]
async fn the_code_flow_with_pkce_returns_the_id_tokens_claims() {
    let (peer, provider) = start().await;
    let options = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (url, pending) = provider.begin_sign_in(REDIRECT, &options).unwrap();
    let q: std::collections::HashMap<String, String> =
        reqwest::Url::parse(&url).unwrap().query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], peer.client_id());
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"], pending.state());
    assert_eq!(q["login_hint"], "alice");
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert!(!q["nonce"].is_empty() && q["code_challenge"].len() == 43);
    assert!(!url.contains("verifier"));

    let answer = peer.authorize(&url, REDIRECT, "alice").await;
    assert_eq!(answer.state, pending.state());
    let signed = provider.finish_sign_in(&pending, &answer.code, &answer.state, now()).await.unwrap();
    assert_eq!(signed.claims.sub, "u-alice");
    assert_eq!(signed.claims.email.as_deref(), Some("alice@example.test"));
    assert_eq!(signed.claims.claim_text("department").as_deref(), Some("Finance"));
    assert_eq!(signed.claims.groups, vec!["g-finance", "g-all"]);
    assert_eq!(signed.claims.amr, vec!["pwd"]);
    assert!(signed.claims.auth_time.is_some());
    assert!(signed.claims.claim("nonce").is_some());
    assert!(signed.access_token_expires_at.unwrap() > now());
    // The access token of the sign-in is one the API accepts.
    let api = provider.verify_access_token(signed.access_token.expose_secret(), now()).await.unwrap();
    assert_eq!(api.sub, "u-alice");
    // The ID token is RS256 (the provider's default) and kept for the logout hint.
    let header = signed.id_token.expose_secret().split('.').next().unwrap().to_owned();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
}

#[tokio::test]
async fn es256_id_tokens_and_the_login_form() {
    let (peer, provider) = start().await;
    peer.configure(json!({"alg": "ES256"})).await;
    // No login hint: the provider shows its form, where the helper signs in as bob.
    let (pending, code, state) = sign_in(&peer, &provider, SignInOptions::default(), "bob").await;
    let signed = provider.finish_sign_in(&pending, &code, &state, now()).await.unwrap();
    assert_eq!(signed.claims.sub, "u-bob");
    assert_eq!(signed.claims.claim_text("userType").as_deref(), Some("Guest"));
    let header = signed.id_token.expose_secret().split('.').next().unwrap().to_owned();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(provider.verify_access_token(signed.access_token.expose_secret(), now()).await.unwrap().sub, "u-bob");
}

#[tokio::test]
async fn an_id_token_from_a_rotated_key_is_verified() {
    let (peer, provider) = start().await;
    peer.rotate_keys().await;
    let options = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    assert!(provider.finish_sign_in(&pending, &code, &state, now()).await.is_ok());
    assert_eq!(provider.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let (peer, provider) = start().await;
    let options = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    provider.finish_sign_in(&pending, &code, &state, now()).await.unwrap();
    match provider.finish_sign_in(&pending, &code, &state, now()).await {
        Err(SignInError::CodeRejected { error, .. }) => assert_eq!(error, "invalid_grant"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_state_is_refused_before_the_code_is_spent() {
    let (peer, provider) = start().await;
    let options = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    for wrong in ["", "x", &format!("{state}x"), &state[..state.len() - 1]] {
        assert_eq!(
            provider.finish_sign_in(&pending, &code, wrong, now()).await.unwrap_err(),
            SignInError::StateMismatch
        );
    }
    // Another sign-in's state and code do not fit this one either.
    let (other, other_code, other_state) =
        sign_in(&peer, &provider, SignInOptions { login_hint: Some("bob".into()), ..SignInOptions::default() }, "bob")
            .await;
    assert_eq!(
        provider.finish_sign_in(&pending, &other_code, &other_state, now()).await.unwrap_err(),
        SignInError::StateMismatch
    );
    // The code was never sent to the provider, so it still works with the right state.
    assert_eq!(provider.finish_sign_in(&pending, &code, &state, now()).await.unwrap().claims.sub, "u-alice");
    assert_eq!(provider.finish_sign_in(&other, &other_code, &other_state, now()).await.unwrap().claims.sub, "u-bob");
}

#[tokio::test]
async fn an_id_token_with_another_sign_ins_nonce_is_refused() {
    let (peer, provider) = start().await;
    let hint = |u: &str| SignInOptions { login_hint: Some(u.into()), ..SignInOptions::default() };
    let (first, _, _) = sign_in(&peer, &provider, hint("alice"), "alice").await;
    let (second, code, state) = sign_in(&peer, &provider, hint("alice"), "alice").await;
    // The second sign-in's state and verifier with the first one's nonce.
    let mut forged: Value = serde_json::to_value(&second).unwrap();
    forged["nonce"] = serde_json::to_value(&first).unwrap()["nonce"].clone();
    let forged: PendingSignIn = serde_json::from_value(forged).unwrap();
    assert_eq!(provider.finish_sign_in(&forged, &code, &state, now()).await.unwrap_err(), SignInError::NonceMismatch);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_or_client_secret_is_refused_by_the_provider() {
    let (peer, provider) = start().await;
    let hint = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (first, _, _) = sign_in(&peer, &provider, hint.clone(), "alice").await;
    let (second, code, state) = sign_in(&peer, &provider, hint.clone(), "alice").await;
    let mut forged: Value = serde_json::to_value(&second).unwrap();
    forged["pkce_verifier"] = serde_json::to_value(&first).unwrap()["pkce_verifier"].clone();
    let forged: PendingSignIn = serde_json::from_value(forged).unwrap();
    match provider.finish_sign_in(&forged, &code, &state, now()).await {
        Err(SignInError::CodeRejected { error, .. }) => assert_eq!(error, "invalid_grant"),
        other => panic!("{other:?}"),
    }

    let wrong =
        Provider::discover(config(&peer).with_client_secret(SecretString::from("not-the-secret".to_owned())), client())
            .await
            .unwrap();
    let (pending, code, state) = sign_in(&peer, &wrong, hint, "alice").await;
    match wrong.finish_sign_in(&pending, &code, &state, now()).await {
        Err(SignInError::CodeRejected { error, .. }) => assert_eq!(error, "invalid_client"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn step_up_with_acr_values_gives_mfa() {
    let (peer, provider) = start().await;
    let options = SignInOptions {
        login_hint: Some("alice".into()),
        acr_values: Some("urn:steward:test:mfa".into()),
        ..SignInOptions::default()
    };
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    assert_eq!(pending.acr_values(), Some("urn:steward:test:mfa"));
    let signed = provider.finish_sign_in(&pending, &code, &state, now()).await.unwrap();
    assert_eq!(signed.claims.amr, vec!["pwd", "mfa"]);
    assert!(signed.claims.has_amr("mfa"));
    assert_eq!(signed.claims.acr.as_deref(), Some("urn:steward:test:mfa"));
    let api = provider.verify_access_token(signed.access_token.expose_secret(), now()).await.unwrap();
    assert!(api.has_amr("mfa"));

    // Without step-up, the user's usual methods.
    let plain = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (pending, code, state) = sign_in(&peer, &provider, plain, "alice").await;
    let signed = provider.finish_sign_in(&pending, &code, &state, now()).await.unwrap();
    assert!(!signed.claims.has_amr("mfa"));
}

#[tokio::test]
async fn max_age_is_checked_against_auth_time_at_the_time_passed_in() {
    let (peer, provider) = start().await;
    let options = SignInOptions {
        login_hint: Some("alice".into()),
        max_age: Some(300),
        prompt: Some("login".into()),
        ..SignInOptions::default()
    };
    let (pending, code, state) = sign_in(&peer, &provider, options.clone(), "alice").await;
    let q = pending.max_age();
    assert_eq!(q, Some(300));
    // 300 s + 60 s leeway later the authentication is too old (the ID token is still valid).
    assert_eq!(
        provider.finish_sign_in(&pending, &code, &state, later(420)).await.unwrap_err(),
        SignInError::StaleAuthentication
    );
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    let signed = provider.finish_sign_in(&pending, &code, &state, later(200)).await.unwrap();
    assert!(signed.claims.auth_time.unwrap() <= now());
}

#[tokio::test]
async fn an_expired_id_token_is_refused() {
    let (peer, provider) = start().await;
    let options = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    // The provider's ID tokens live an hour.
    assert_eq!(
        provider.finish_sign_in(&pending, &code, &state, later(3600 + 120)).await.unwrap_err(),
        SignInError::IdToken(TokenError::Expired)
    );
}

#[tokio::test]
async fn logout_goes_to_the_end_session_endpoint() {
    let (peer, provider) = start().await;
    let options = SignInOptions { login_hint: Some("alice".into()), ..SignInOptions::default() };
    let (pending, code, state) = sign_in(&peer, &provider, options, "alice").await;
    let signed = provider.finish_sign_in(&pending, &code, &state, now()).await.unwrap();
    let back = "http://127.0.0.1:9/signed-out";
    let url = provider.logout_url(Some(signed.id_token.expose_secret()), Some(back)).unwrap();
    assert!(url.starts_with(&format!("{}/logout?", peer.issuer())), "{url}");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = no_redirects.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["location"], back);
    // Without a hint the provider asks nothing of us and does not redirect.
    let url = provider.logout_url(None, None).unwrap();
    assert_eq!(no_redirects.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_providers_userinfo_answers_for_its_access_tokens() {
    let (peer, provider) = start().await;
    let token = peer.mint(MintOptions { alg: Some("ES256".into()), ..MintOptions::user("alice") }).await;
    let url = provider.metadata().userinfo_endpoint.clone().unwrap();
    let resp = reqwest::Client::new().get(url.clone()).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info["sub"], "u-alice");
    assert_eq!(info["department"], "Finance");
    let expired = peer.mint(MintOptions { lifetime: Some(-10), ..MintOptions::user("alice") }).await;
    let resp = reqwest::Client::new().get(url).bearer_auth(&expired).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn cached_keys_outlive_the_provider_and_unknown_ones_say_it_is_unavailable() {
    let (peer, provider) = start().await;
    let known = peer.mint(MintOptions::user("alice")).await;
    let unknown = peer.mint(MintOptions { unpublished_key: true, ..MintOptions::user("alice") }).await;
    drop(peer);
    assert_eq!(provider.verify_access_token(&known, now()).await.unwrap().sub, "u-alice");
    match provider.verify_access_token(&unknown, now()).await {
        Err(TokenError::ProviderUnavailable(why)) => assert!(why.contains("jwks"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The failed fetch counts against the rate limit: no second attempt right away.
    assert_eq!(provider.verify_access_token(&unknown, now()).await, Err(TokenError::UnknownKey));
    assert!(matches!(provider.refresh_keys(now()).await, Err(TokenError::ProviderUnavailable(_))));
    assert!(provider.verify_access_token(&known, now()).await.is_ok());
}
