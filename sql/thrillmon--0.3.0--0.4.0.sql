-- thrillmon 0.3.0 -> 0.4.0. Frozen once 0.4.0 is released.
\echo Use "ALTER EXTENSION thrillmon UPDATE TO '0.4.0'" to load this file. \quit

