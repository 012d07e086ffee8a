-- The tool catalogue's change counter and search index (engineer H6).
--
-- `tool_catalogue_generation` holds one number that every change of what
-- `toolinfo.json` publishes increases: a tool made, deleted, renamed or re-titled, its
-- metadata, tags or authors. Triggers bump it, so no write path can forget to; the
-- dashboard keeps the serialised catalogue until the number moves.
--
-- `tool_search` is a trigram full-text index over each tool's name, title, description
-- and tags (joined with char(31)), keyed by the tool's uid (stable, unique, never
-- reused), so the public list's substring search of three or more characters reads the
-- index instead of every row. Triggers keep it in step with `tools` and `tool_tags`.

CREATE TABLE tool_catalogue_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO tool_catalogue_generation (id, generation) VALUES (1, 1);

CREATE VIRTUAL TABLE tool_search USING fts5(
    name, title, description, tags,
    tokenize = 'trigram'
);
INSERT INTO tool_search (rowid, name, title, description, tags)
    SELECT t.uid, t.name, t.title, t.description,
           COALESCE((SELECT group_concat(tag, char(31)) FROM tool_tags g WHERE g.tool = t.name), '')
    FROM tools t;

CREATE TRIGGER tools_catalogue_insert AFTER INSERT ON tools BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
    INSERT INTO tool_search (rowid, name, title, description, tags)
        VALUES (new.uid, new.name, new.title, new.description, '');
END;

CREATE TRIGGER tools_catalogue_update AFTER UPDATE OF name, uid, title, description ON tools BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
    DELETE FROM tool_search WHERE rowid = old.uid;
    INSERT INTO tool_search (rowid, name, title, description, tags)
        VALUES (new.uid, new.name, new.title, new.description,
                COALESCE((SELECT group_concat(tag, char(31)) FROM tool_tags g WHERE g.tool = new.name), ''));
END;

CREATE TRIGGER tools_catalogue_delete AFTER DELETE ON tools BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
    DELETE FROM tool_search WHERE rowid = old.uid;
END;

CREATE TRIGGER tool_info_catalogue_insert AFTER INSERT ON tool_info BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER tool_info_catalogue_update AFTER UPDATE ON tool_info BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER tool_info_catalogue_delete AFTER DELETE ON tool_info BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER tool_authors_catalogue_insert AFTER INSERT ON tool_authors BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER tool_authors_catalogue_update AFTER UPDATE ON tool_authors BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
END;
CREATE TRIGGER tool_authors_catalogue_delete AFTER DELETE ON tool_authors BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER tool_tags_catalogue_insert AFTER INSERT ON tool_tags BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
    UPDATE tool_search
        SET tags = COALESCE((SELECT group_concat(tag, char(31)) FROM tool_tags g WHERE g.tool = new.tool), '')
        WHERE rowid = (SELECT uid FROM tools WHERE name = new.tool);
END;
CREATE TRIGGER tool_tags_catalogue_update AFTER UPDATE ON tool_tags BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
    UPDATE tool_search
        SET tags = COALESCE((SELECT group_concat(tag, char(31)) FROM tool_tags g WHERE g.tool = old.tool), '')
        WHERE rowid = (SELECT uid FROM tools WHERE name = old.tool);
    UPDATE tool_search
        SET tags = COALESCE((SELECT group_concat(tag, char(31)) FROM tool_tags g WHERE g.tool = new.tool), '')
        WHERE rowid = (SELECT uid FROM tools WHERE name = new.tool);
END;
CREATE TRIGGER tool_tags_catalogue_delete AFTER DELETE ON tool_tags BEGIN
    UPDATE tool_catalogue_generation SET generation = generation + 1 WHERE id = 1;
    UPDATE tool_search
        SET tags = COALESCE((SELECT group_concat(tag, char(31)) FROM tool_tags g WHERE g.tool = old.tool), '')
        WHERE rowid = (SELECT uid FROM tools WHERE name = old.tool);
END;
