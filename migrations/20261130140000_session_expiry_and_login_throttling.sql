-- Tokens expire (API.md: 30 days after issue by default, configurable) and end on
-- logout, which deletes the session: a revoked token is then an unknown one. Sessions
-- issued before this migration get the default lifetime from their creation.
ALTER TABLE session ADD COLUMN expiration_timestamp timestamptz;
UPDATE session SET expiration_timestamp = creation_timestamp + interval '30 days';
ALTER TABLE session ALTER COLUMN expiration_timestamp SET NOT NULL;

-- Login throttling (API.md: 10 wrong passwords for one user name within 15 minutes
-- answer 429): the times of the user's recent login attempts that have not (yet)
-- succeeded, at most as many as the limit. An attempt is recorded before its password
-- is checked and removed when it succeeds, so that concurrent guesses (on as many
-- Lambda instances as the attacker can wake) count before their hashes are computed.
-- On the user's row, so the check costs the login no extra read.
ALTER TABLE "user" ADD COLUMN login_failure_timestamps timestamptz[] NOT NULL DEFAULT '{}';
