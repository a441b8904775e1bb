-- x402 authorizations presented for keyless calls, claimed for one account
-- before the call is served (functions/chat/src/x402/): a wallet object
-- guards replays within its account; this guards them across accounts (an
-- address whose owner changed between two presentations of one payment).
CREATE TABLE x402_claims (
    reference   TEXT PRIMARY KEY,          -- x402:<scheme>:<payer>:<nonce>
    user_id     TEXT NOT NULL,
    claimed_at  INTEGER NOT NULL
);
