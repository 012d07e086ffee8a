-- Per-tool quota overrides (`toolforged admin quota set`): one row per tool and key.
-- `value` is the canonical text of a value the jobs engine's quota module validated
-- (a count such as `20`, a cpu quantity such as `500m` or `2`, a memory quantity such
-- as `4Gi`); a key without a row has its default. `Store::delete_tool` removes a
-- tool's rows in its transaction (the reference makes that mandatory).
CREATE TABLE tool_quotas (
    tool TEXT NOT NULL REFERENCES tools(name),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tool, key)
);
