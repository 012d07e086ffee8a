-- Envvars (crates/secrets): one row per tool and name, the value encrypted.
-- `key_id` names the key file (<data-dir>/secrets/keys/<key_id>.key) that sealed
-- `ciphertext`; the tool and name are bound to it as associated data, so a row
-- copied to another tool or name no longer decrypts. No value is ever stored in clear.
CREATE TABLE envvars (
    tool TEXT NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_id INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tool, name)
);
CREATE INDEX envvars_by_key ON envvars(key_id);
