-- Portal sign-in (issue 5, points 1 and 7): authorization-code sign-ins in flight and the
-- server-side sessions of signed-in users. No secret is stored in the clear: rows are keyed by
-- SHA-256 hashes, and what must be kept (the provider's pending sign-in, the ID token for the
-- logout hint) is sealed under a key derived from a secret only the browser holds.

-- A sign-in begun at /auth/login and not yet finished at /auth/callback, keyed by the SHA-256
-- of its `state`; `browser_hash` is the SHA-256 of the binding cookie set at /auth/login, so
-- the callback finishes only in the browser that began it. Taken (deleted) by the first
-- callback; expired rows are swept.
CREATE TABLE sign_in_states (
    state_hash   TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    sealed       TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sign_in_states_expires ON sign_in_states (expires_at);

-- A portal session, keyed by the SHA-256 of the random token in the session cookie. It ends
-- at `ends_at`: the earlier of the absolute expiry and `last_seen_at` plus the idle timeout
-- (kept up to date by the writes that move `last_seen_at`, so one index finds what to sweep).
-- The sign-in facts are those the provider's ID token gave; `id_token` is sealed.
CREATE TABLE sessions (
    id_hash          TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    idle_seconds     BIGINT NOT NULL,
    ends_at          BIGINT NOT NULL,
    amr              TEXT NOT NULL,
    acr              TEXT,
    auth_time        BIGINT,
    device_compliant BOOLEAN,
    id_token         TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_ends ON sessions (ends_at);
