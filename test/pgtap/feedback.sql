-- Feedback: label_anomaly() stores a person's verdict on an anomaly; a false positive keeps its
-- shape from alerting again on its metric; tune_detection() replays the labelled history through
-- backtest() and suggests (and with apply => true writes) the sensitivity that separates the
-- labels best.
BEGIN;
SET client_min_messages = warning;
SELECT plan(35);

\ir fixtures/clean_slate.sql
UPDATE thrillmon.incident_policy SET open_on_critical = false;

-- Noise around 100 (sd 1, a fixed seed) a minute apart, from 4000 minutes ago to 1201, with a
-- spike of +30 that a person will call a true positive and, 2500 points later, a bump of +10 they
-- will call a false positive (a deploy): both within the three days of lookback the first pass
-- scores, far enough apart that neither is part of the other's episode. (A pass scores up to the
-- wall clock, so the points of the later test are stamped in the 1200 minutes left before now().)
-- With no cooldown an alert is over when the points after it are normal; the z-score alone keeps
-- the deviations plain (the ensemble's calibration would learn from the bumps).
INSERT INTO thrillmon.anomaly_detection_config (metric_name, cooldown_minutes, detection_algorithms, lookback_window_minutes)
VALUES ('fb', 0, '{z_score}', 4320);
SELECT setseed(0.42);
CREATE TEMP TABLE pts AS
	SELECT g, 100 + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS v FROM generate_series(1, 2800) g;
UPDATE pts SET v = v + 30 WHERE g = 200;
UPDATE pts SET v = v + 10 WHERE g = 2700;
SELECT count(thrillmon.record_metric('fb', v, 'performance', NULL, now() - make_interval(mins => 4001 - g))) FROM pts \g /dev/null
CREATE TEMP TABLE found AS SELECT * FROM thrillmon.detect_anomalies();
SELECT id AS fp_id, deviation_score AS fp_dev, alert_id AS fp_alert FROM found
WHERE time_window_end = (SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = 'fb' ORDER BY "timestamp" OFFSET 2699 LIMIT 1) \gset
SELECT id AS tp_id FROM found
WHERE time_window_end = (SELECT "timestamp" FROM thrillmon.metric_time_series WHERE metric_name = 'fb' ORDER BY "timestamp" OFFSET 199 LIMIT 1) \gset
SELECT is((SELECT count(*)::int FROM found), 2, 'the history holds two anomalies, the bump and the spike');
SELECT ok(:'fp_alert' <> '', 'the bump raised an alert');

-- Labels.
SELECT is((thrillmon.label_anomaly(:'fp_id', 'false_positive', 'the 14:00 deploy')).label, 'false_positive',
	'label_anomaly() stores a false positive');
SELECT is((SELECT row(metric_name, point_time, anomaly_type, deviation, note, labelled_by)::text FROM thrillmon.anomaly_labels WHERE anomaly_id = :'fp_id'),
	(SELECT row(metric_name, time_window_end, anomaly_type, deviation_score, 'the 14:00 deploy', session_user)::text FROM found WHERE id = :'fp_id'),
	'... with the anomaly''s shape, the note and who labelled it');
SELECT is((thrillmon.label_anomaly(:'tp_id', 'false_positive')).label, 'false_positive', 'a second anomaly labelled');
SELECT is((thrillmon.label_anomaly(:'tp_id', 'true_positive')).label, 'true_positive', 'labelling it again replaces the label');
SELECT is((SELECT count(*)::int FROM thrillmon.anomaly_labels), 2, '... one label per anomaly');
SELECT is((SELECT note FROM thrillmon.anomaly_labels WHERE anomaly_id = :'tp_id'), NULL, '... note included');

SELECT throws_ok($$SELECT thrillmon.label_anomaly(NULL, 'false_positive')$$, '22004',
	'thrillmon: label_anomaly needs an anomaly_id and a label', 'no anomaly id');
SELECT throws_ok(format($$SELECT thrillmon.label_anomaly(%L, NULL)$$, :'fp_id'), '22004',
	'thrillmon: label_anomaly needs an anomaly_id and a label', 'no label');
SELECT throws_ok(format($$SELECT thrillmon.label_anomaly(%L, 'maybe')$$, :'fp_id'), '22023',
	'thrillmon: unknown anomaly label "maybe"', 'an unknown label');
SELECT throws_ok($$SELECT thrillmon.label_anomaly('00000000-0000-0000-0000-000000000000', 'true_positive')$$, 'P0002',
	'thrillmon: no anomaly with id 00000000-0000-0000-0000-000000000000', 'an anomaly that does not exist');
SELECT throws_ok(format($$SELECT thrillmon.label_anomaly(%L, 'true_positive', repeat('x', 2001))$$, :'fp_id'), '22001',
	'thrillmon: a label''s note is at most 2000 characters (got 2001)', 'a note too long');
SELECT is((SELECT label FROM thrillmon.anomaly_labels WHERE anomaly_id = :'fp_id'), 'false_positive', '... and none of them changed a label');

-- An archived anomaly can be labelled too, and a label outlives its anomaly.
INSERT INTO thrillmon.anomaly_detections_archive (id, metric_name, anomaly_type, severity, anomaly_value, deviation_score,
	confidence_score, detection_algorithm, time_window_start, time_window_end)
VALUES ('00000000-0000-0000-0000-00000000000a', 'old_metric', 'drop', 'low', 1, -6, 0.6, 'mad', now() - interval '40 days', now() - interval '40 days');
SELECT is((thrillmon.label_anomaly('00000000-0000-0000-0000-00000000000a', 'true_positive', 'archived')).note, 'archived',
	'an archived anomaly is labelled');
DELETE FROM thrillmon.anomaly_detections_archive WHERE id = '00000000-0000-0000-0000-00000000000a';
SELECT is((SELECT row(metric_name, anomaly_type, deviation)::text FROM thrillmon.anomaly_labels WHERE anomaly_id = '00000000-0000-0000-0000-00000000000a'),
	row('old_metric', 'drop', -6::float8)::text, '... and its label outlives it');

-- The same shape does not alert again (a bump of +9 where +10 was labelled); a clearly larger one does.
CREATE TEMP TABLE later AS SELECT g, 100 + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS v FROM generate_series(1, 1200) g;
UPDATE later SET v = v + 9 WHERE g = 900;
UPDATE later SET v = v + 25 WHERE g = 1100;
SELECT count(thrillmon.record_metric('fb', v, 'performance', NULL, now() - make_interval(mins => 1201 - g))) FROM later \g /dev/null
-- (Stamped behind the first pass's horizon: the next pass starts over from the lookback window,
-- and the anomalies the first one recorded are not recorded twice.)
DELETE FROM thrillmon.detector_progress;
CREATE TEMP TABLE found2 AS SELECT * FROM thrillmon.detect_anomalies();
SELECT now() - interval '301 minutes' AS bump_at, now() - interval '101 minutes' AS spike_at \gset
SELECT is((SELECT metadata->>'suppressed_by_label' FROM found2 WHERE time_window_end = :'bump_at'), :'fp_id',
	'the same bump later is recorded as an anomaly, marked with the false-positive label');
SELECT is((SELECT alert_id FROM found2 WHERE time_window_end = :'bump_at'), NULL, '... and raises no alert');
SELECT ok((SELECT alert_created FROM found2 WHERE time_window_end = :'spike_at'), 'a spike well past the labelled one alerts');
SELECT is(thrillmon._false_positive_for('fb', 'drop', -:fp_dev), NULL, 'the label covers its own direction and type only');
SELECT is(thrillmon._false_positive_for('fb', 'spike', 1.26 * :fp_dev), NULL, '... and deviations up to 1.25 times its own');

-- Tuning.
CREATE TEMP TABLE tuned AS SELECT * FROM thrillmon.tune_detection('fb');
SELECT is((SELECT row(current_sensitivity, true_positives, false_positives, true_positives_caught_before, false_positives_caught_before)::text FROM tuned),
	row(4.5::float8, 1, 1, 1, 1)::text, 'tune_detection(): at the current sensitivity both labels are caught');
SELECT is((SELECT row(true_positives_caught_after, false_positives_caught_after, applied)::text FROM tuned), row(1, 0, false)::text,
	'... at the suggested one only the true positive is; nothing applied');
SELECT ok((SELECT suggested_sensitivity > abs(:fp_dev) / 1.5 AND suggested_sensitivity < 24 FROM tuned),
	'... the suggestion lies between the two deviations');
SELECT ok((SELECT anomalies_after < anomalies_before AND points >= 1000 FROM tuned), '... with fewer anomalies, over the replayed points');
SELECT is((SELECT sensitivity FROM thrillmon.anomaly_detection_config WHERE metric_name = 'fb'), 4.5::float8, '... and the configuration is unchanged');
SELECT is((SELECT count(*)::int FROM thrillmon.backtest('fb', now() - interval '2 days', now(), NULL, (SELECT suggested_sensitivity FROM tuned))
	WHERE is_anomaly AND "timestamp" = (SELECT point_time FROM thrillmon.anomaly_labels WHERE anomaly_id = :'fp_id')), 0,
	'... backtest() at the suggestion agrees: the labelled bump is no anomaly there');
SELECT is((SELECT row(applied, suggested_sensitivity)::text FROM thrillmon.tune_detection('fb', apply => true)),
	(SELECT row(true, suggested_sensitivity)::text FROM tuned), 'apply => true writes the suggestion');
SELECT is((SELECT row(sensitivity, cooldown_minutes)::text FROM thrillmon.anomaly_detection_config WHERE metric_name = 'fb'),
	(SELECT row(suggested_sensitivity, 0)::text FROM tuned), '... into the metric''s row, its other settings kept');
SELECT is((SELECT row(applied, current_sensitivity = suggested_sensitivity, false_positives_caught_before)::text FROM thrillmon.tune_detection('fb', true)),
	row(false, true, 0)::text, 'tuning again: nothing left to change');
SELECT throws_ok($$SELECT * FROM thrillmon.tune_detection('no_such_metric')$$, 'P0002',
	'thrillmon: metric "no_such_metric" has no stored points to replay', 'tune_detection() of a metric with no points');
SELECT thrillmon.record_metric('unlabelled', 1) \g /dev/null
SELECT throws_ok($$SELECT * FROM thrillmon.tune_detection('unlabelled')$$, '22023',
	'thrillmon: metric "unlabelled" has no labelled anomaly within its stored points', '... and of one with no labels');
SELECT throws_ok($$SELECT * FROM thrillmon.tune_detection(NULL)$$, '22004', NULL, '... and of NULL');

-- The bound: at 100000 labels a new one is refused; relabelling still works.
INSERT INTO thrillmon.anomaly_labels (anomaly_id, metric_name, point_time, anomaly_type, deviation, label)
SELECT gen_random_uuid(), 'bulk', now(), 'spike', 5, 'true_positive' FROM generate_series(1, 100000 - 3);
SELECT id AS other_id FROM found2 WHERE alert_id IS NOT NULL LIMIT 1 \gset
SELECT throws_ok(format($$SELECT thrillmon.label_anomaly(%L, 'true_positive')$$, :'other_id'), '54000',
	'thrillmon: too many anomaly labels (at most 100000)', 'a label past the bound is refused');
SELECT is((thrillmon.label_anomaly(:'fp_id', 'true_positive')).label, 'true_positive', '... relabelling one is not');

SELECT * FROM finish();
ROLLBACK;
