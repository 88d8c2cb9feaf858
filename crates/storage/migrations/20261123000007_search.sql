-- Natural-language facility search, and members' favourite facilities.
--
-- Each facility is rendered as bilingual text (its name, its sport in Spanish and English, its
-- description, its specifications as phrases) by the application, which stores three things
-- from that one rendering: the text, its full-text vector, and its sentence embedding. A search
-- runs both retrieval modes and fuses the two rankings.

-- Accent-insensitive matching: "pádel" and "padel", "climatizada" and "Climatizada".
CREATE EXTENSION IF NOT EXISTS unaccent;

-- Filtered vector search ("covered courts in this club") relies on iterative index scans,
-- which arrived in pgvector 0.8: an older HNSW scan returns its ef_search nearest rows and
-- filters them afterwards, so a selective filter silently loses results. Refuse to migrate a
-- server that would do that, rather than return short result lists for months.
DO $$
DECLARE
    version int[] := (
        SELECT (regexp_match(extversion, '^(\d+)\.(\d+)'))::int[]
        FROM pg_extension WHERE extname = 'vector'
    );
BEGIN
    IF version IS NULL OR version < ARRAY[0, 8] THEN
        RAISE EXCEPTION 'facility search needs pgvector 0.8 or later (found %)',
            (SELECT extversion FROM pg_extension WHERE extname = 'vector');
    END IF;
END
$$;

-- unaccent() is only STABLE: its result depends on a dictionary that could be changed, and it
-- finds that dictionary through search_path at call time. Functions used to build stored
-- vectors and index expressions must be IMMUTABLE, so this wrapper pins the dictionary. The
-- SQL-standard body (RETURN …) is resolved once, when the function is created, so later
-- changes to search_path cannot make it find another `unaccent`. If the unaccent rules are
-- ever edited, re-index (the application re-renders every facility).
CREATE FUNCTION search_unaccent(input text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN unaccent('unaccent'::regdictionary, input);

-- The full-text vector of a rendered facility. Every part is stemmed with both the Spanish and
-- the English dictionaries (descriptions mix the two languages, often within one facility) over
-- unaccented text, so a query stemmed the same way matches whatever its language and accents.
-- Weights: the name A, the sport names B, the description and specification phrases C, so a
-- facility called "Pádel Techado 1" outranks one whose description mentions a roof.
CREATE FUNCTION facility_search_tsv(name text, sport text, details text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN setweight(to_tsvector('spanish', search_unaccent(coalesce(name, ''))), 'A')
        || setweight(to_tsvector('english', search_unaccent(coalesce(name, ''))), 'A')
        || setweight(to_tsvector('spanish', search_unaccent(coalesce(sport, ''))), 'B')
        || setweight(to_tsvector('english', search_unaccent(coalesce(sport, ''))), 'B')
        || setweight(to_tsvector('spanish', search_unaccent(coalesce(details, ''))), 'C')
        || setweight(to_tsvector('english', search_unaccent(coalesce(details, ''))), 'C');

ALTER TABLE facilities
    -- The sentence embedding of search_text (all-MiniLM-L6-v2: 384 dimensions, unit length).
    -- NULL until the facility is first indexed; a new model of another size needs a migration.
    ADD COLUMN search_embedding  vector(384),
    -- The rendered text that was embedded: shown in result snippets.
    ADD COLUMN search_text       text,
    -- facility_search_tsv() of the same rendering. Written with the embedding rather than
    -- generated from the row's columns, so that both retrieval modes always describe the same
    -- version of the facility (the sport names and phrases come from the application).
    ADD COLUMN search_tsv        tsvector,
    -- When the index columns were written. A facility edited since (updated_at is later) is
    -- stale and due for re-indexing.
    ADD COLUMN search_indexed_at timestamptz,
    -- The four are written together, by one statement, or not at all.
    ADD CONSTRAINT facilities_search_index_complete
        CHECK (num_nulls(search_embedding, search_text, search_tsv, search_indexed_at) IN (0, 4));

-- Nearest neighbours by cosine distance (`<=>`), the measure the model was trained for. Partial:
-- retired facilities are never searched, so they need not be in the graph. Default build
-- parameters (m = 16, ef_construction = 64) are ample for thousands of facilities; the query
-- side sets hnsw.ef_search per search.
CREATE INDEX facilities_search_embedding_idx ON facilities
    USING hnsw (search_embedding vector_cosine_ops) WHERE retired_at IS NULL;

CREATE INDEX facilities_search_tsv_idx ON facilities
    USING gin (search_tsv) WHERE retired_at IS NULL;

-- A member's favourite facilities: bookmarks, and the strongest signal for recommendations.
-- Unlike bookings, a favourite records nothing that happened, so it goes with its member or
-- facility if either is ever deleted.
CREATE TABLE favorites (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    facility_id uuid NOT NULL REFERENCES facilities (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- One row per member and facility: favouriting twice is a no-op (ON CONFLICT DO NOTHING).
    CONSTRAINT favorites_pkey PRIMARY KEY (user_id, facility_id)
);
-- Serves the foreign key (and "how many members favourite this facility").
CREATE INDEX favorites_facility_idx ON favorites (facility_id);
