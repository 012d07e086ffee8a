-- Tool metadata for the dashboard and `toolinfo.json` (engineer H4b), as Striker's
-- ToolInfo: licence, tags, authors, links, whether the tool is a webservice and the
-- path of its page. The title and description stay in `tools`.

-- The licences a tool may choose: OSI-approved, by SPDX identifier (Striker's
-- `SoftwareLicense` fixture). `recommended` ones are offered first.
CREATE TABLE software_licenses (
    slug TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    recommended INTEGER NOT NULL DEFAULT 0
);
INSERT INTO software_licenses (slug, name, url, recommended) VALUES
    ('AGPL-3.0-only', 'GNU Affero General Public License 3.0 only', 'https://www.gnu.org/licenses/agpl-3.0.html', 0),
    ('AGPL-3.0-or-later', 'GNU Affero General Public License 3.0 or later', 'https://www.gnu.org/licenses/agpl-3.0.html', 0),
    ('APL-1.0', 'Adaptive Public License 1.0', 'https://opensource.org/licenses/APL-1.0', 0),
    ('Apache-2.0', 'Apache License 2.0', 'https://www.apache.org/licenses/LICENSE-2.0', 1),
    ('Artistic-2.0', 'Artistic License 2.0', 'https://opensource.org/licenses/Artistic-2.0', 0),
    ('BSD-2-Clause', 'BSD 2-clause "Simplified" License', 'https://opensource.org/licenses/BSD-2-Clause', 0),
    ('BSD-3-Clause', 'BSD 3-clause "Modified" License', 'https://opensource.org/licenses/BSD-3-Clause', 0),
    ('CDDL-1.0', 'Common Development and Distribution License', 'https://opensource.org/licenses/CDDL-1.0', 0),
    ('ECL-2.0', 'Educational Community License, Version 2.0', 'https://opensource.org/licenses/ECL-2.0', 0),
    ('EPL-1.0', 'Eclipse Public License 1.0', 'https://opensource.org/licenses/EPL-1.0', 0),
    ('EPL-2.0', 'Eclipse Public License 2.0', 'https://opensource.org/licenses/EPL-2.0', 0),
    ('EUPL-1.2', 'European Union Public Licence 1.2', 'https://opensource.org/licenses/EUPL-1.2', 0),
    ('FPL-1.0.0', 'Free Public License 1.0.0', 'https://opensource.org/licenses/FPL-1.0.0', 0),
    ('Fair', 'Fair License', 'https://opensource.org/licenses/Fair', 0),
    ('GPL-2.0-only', 'GNU General Public License 2.0 only', 'https://www.gnu.org/licenses/gpl-2.0.html', 0),
    ('GPL-2.0-or-later', 'GNU General Public License 2.0 or later', 'https://www.gnu.org/licenses/gpl-2.0.html', 1),
    ('GPL-3.0-only', 'GNU General Public License 3.0 only', 'https://www.gnu.org/licenses/gpl-3.0.html', 0),
    ('GPL-3.0-or-later', 'GNU General Public License 3.0 or later', 'https://www.gnu.org/licenses/gpl-3.0.html', 1),
    ('ISC', 'ISC License', 'https://opensource.org/licenses/ISC', 0),
    ('LGPL-2.1-only', 'GNU Lesser General Public License 2.1 only', 'https://www.gnu.org/licenses/lgpl-2.1.html', 0),
    ('LGPL-2.1-or-later', 'GNU Lesser General Public License 2.1 or later', 'https://www.gnu.org/licenses/lgpl-2.1.html', 0),
    ('LGPL-3.0-only', 'GNU Lesser General Public License 3.0 only', 'https://www.gnu.org/licenses/lgpl-3.0.html', 0),
    ('LGPL-3.0-or-later', 'GNU Lesser General Public License 3.0 or later', 'https://www.gnu.org/licenses/lgpl-3.0.html', 0),
    ('LiLiQ-P-1.1', 'Licence Libre du Québec – Permissive (LiLiQ-P) version 1.1', 'https://opensource.org/licenses/LiLiQ-P-1.1', 0),
    ('LiLiQ-R-1.1', 'Licence Libre du Québec – Réciprocité (LiLiQ-R) version 1.1', 'https://opensource.org/licenses/LiLiQ-R-1.1', 0),
    ('LiLiQ-Rplus-1.1', 'Licence Libre du Québec – Réciprocité forte (LiLiQ-R+) version 1.1', 'https://opensource.org/licenses/LiLiQ-Rplus-1.1', 0),
    ('MIT', 'MIT License', 'https://opensource.org/licenses/MIT', 1),
    ('MPL-2.0', 'Mozilla Public License 2.0', 'https://www.mozilla.org/MPL/2.0/', 0),
    ('OSL-3.0', 'Open Software License 3.0', 'https://opensource.org/licenses/OSL-3.0', 0),
    ('QPL-1.0', 'Q Public License 1.0', 'https://opensource.org/licenses/QPL-1.0', 0),
    ('UPL-1.0', 'Universal Permissive License 1.0', 'https://opensource.org/licenses/UPL', 0),
    ('Unlicense', 'The Unlicense', 'https://unlicense.org/', 0),
    ('Zlib', 'zlib/libpng License', 'https://opensource.org/licenses/Zlib', 0);

-- One row per tool that has metadata; a tool without a row has the defaults (no
-- licence, no links, not a webservice), so tools made by `toolforged admin tool create`
-- appear in `toolinfo.json` too. Text columns are '' when unset.
CREATE TABLE tool_info (
    tool TEXT PRIMARY KEY NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
    license TEXT REFERENCES software_licenses(slug),
    repository TEXT NOT NULL DEFAULT '',
    issues TEXT NOT NULL DEFAULT '',
    docs TEXT NOT NULL DEFAULT '',
    is_webservice INTEGER NOT NULL DEFAULT 0,
    suburl TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL
);

-- Keywords of a tool (toolinfo `keywords`), searched by the public tool list.
CREATE TABLE tool_tags (
    tool TEXT NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (tool, tag)
);
CREATE INDEX tool_tags_by_tag ON tool_tags(tag);

-- Authors of a tool as free text names (toolinfo `author`), in the order given.
CREATE TABLE tool_authors (
    tool TEXT NOT NULL REFERENCES tools(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (tool, position)
);
