-- One line per definition of every object in schema thrillmon, for comparing two databases
-- (used by upgrade.sh: an upgraded install must equal a fresh one). Daily partitions, whose
-- names depend on the day, are left to pg_dump's comparison.
WITH rels AS (
	SELECT c.oid, c.relname, c.relkind, c.relacl FROM pg_class c
	WHERE c.relnamespace = 'thrillmon'::regnamespace AND c.relname !~ '^metric_time_series_p[0-9]{8}'
)
SELECT line FROM (
	SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid)) || ' acl=' || coalesce(p.proacl::text, '')
		|| ' comment=' || coalesce(md5(obj_description(p.oid, 'pg_proc')), '') AS line
	FROM pg_proc p WHERE p.pronamespace = 'thrillmon'::regnamespace
	UNION ALL
	SELECT 'column ' || r.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
		|| ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' generated=' || a.attgenerated::text
	FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'constraint ' || r.relname || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
	FROM rels r JOIN pg_constraint con ON con.conrelid = r.oid
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM rels r JOIN pg_index i ON i.indrelid = r.oid
	UNION ALL
	SELECT 'view ' || r.relname || ' ' || md5(pg_get_viewdef(r.oid)) FROM rels r WHERE r.relkind = 'v'
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal
	UNION ALL
	SELECT 'relation ' || r.relname || ' kind=' || r.relkind::text || ' acl=' || coalesce(r.relacl::text, '')
		|| ' comment=' || coalesce(md5(obj_description(r.oid, 'pg_class')), '')
	FROM rels r
	UNION ALL
	SELECT 'dumped ' || unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'thrillmon'
) x ORDER BY 1
