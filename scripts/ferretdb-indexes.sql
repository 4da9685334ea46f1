-- Index-backed equality for FerretDB 1.24 on PostgreSQL (applied by scripts/infra.sh at every
-- start of the private cluster; idempotent).
--
-- FerretDB hands an equality filter on a top-level field to PostgreSQL as
--     _jsonb -> 'field' @> '<value>'
-- while the index it creates for a MongoDB index (the `_id` one included) is a btree on
-- (_jsonb -> 'field'), which serves `=` and ranges but never `@>`. So every lookup by `_id`,
-- every compare-and-set on `{_id, version}` and every queue poll on an indexed field was a
-- sequential scan of the whole table: its cost grew with the store (0.75 ms at 500 documents,
-- about 150 ms at 100,000). A GIN index on the same expression serves `@>`; this file gives
-- every such btree index a GIN twin on its leading expression, now and, through an event
-- trigger, whenever FerretDB creates one. It needs custom query plans (the field name is a
-- parameter of FerretDB's prepared statements; a generic plan cannot match the index's
-- expression): scripts/infra.sh sets plan_cache_mode = force_custom_plan.
--
-- MongoDB itself needs none of this: its indexes serve equality. FerretDB's own index listing
-- (listIndexes) does not show these indexes; a twin outlives a btree index dropped on its own
-- (dropIndexes), which costs its upkeep on writes and nothing else.

CREATE OR REPLACE FUNCTION tocsin_gin_twin(btree oid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  tbl oid;
  expr text;
  idx_name text;
  ns text;
BEGIN
  SELECT i.indrelid, pg_get_indexdef(i.indexrelid, 1, false), c.relname, n.nspname
    INTO tbl, expr, idx_name, ns
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_am a ON a.oid = c.relam
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE i.indexrelid = btree AND a.amname = 'btree'
     AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast');
  -- A top-level field only: FerretDB queries a dotted path as `_jsonb #> '{a,b}'` but indexes
  -- it as `(_jsonb -> 'a') -> 'b'`, which a twin could not serve either.
  IF expr IS NULL OR expr !~ '^\(*_jsonb -> ''[^'']*''::text\)*$' THEN
    RETURN;
  END IF;
  IF EXISTS (
    SELECT 1 FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_am a ON a.oid = c.relam
     WHERE i.indrelid = tbl AND a.amname = 'gin'
       AND pg_get_indexdef(i.indexrelid, 1, false) = expr
  ) THEN
    RETURN;
  END IF;
  -- IF NOT EXISTS: a twin outlives its btree index dropped alone (see above), and FerretDB
  -- names an index re-created under the same MongoDB name the same.
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((%s))',
                 left(idx_name, 59) || '_gin', tbl::regclass, expr);
END $$;

CREATE OR REPLACE FUNCTION tocsin_gin_on_create_index() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT objid FROM pg_event_trigger_ddl_commands()
            WHERE command_tag = 'CREATE INDEX' AND object_type = 'index' LOOP
    PERFORM tocsin_gin_twin(r.objid);
  END LOOP;
END $$;

DROP EVENT TRIGGER IF EXISTS tocsin_gin_twins;
CREATE EVENT TRIGGER tocsin_gin_twins ON ddl_command_end
  WHEN TAG IN ('CREATE INDEX') EXECUTE FUNCTION tocsin_gin_on_create_index();

-- Indexes created before this file was applied (an existing cluster).
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT i.indexrelid FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_am a ON a.oid = c.relam
            WHERE a.amname = 'btree' LOOP
    PERFORM tocsin_gin_twin(r.indexrelid);
  END LOOP;
END $$;
