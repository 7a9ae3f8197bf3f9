-- thrillmon 0.6.0 -> 0.7.0: what an installed 0.6.0 needs to equal a fresh 0.7.0 install (which
-- is built from sql/source/ and never runs this file). Frozen once 0.7.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.7.0'" to load this file. \quit
