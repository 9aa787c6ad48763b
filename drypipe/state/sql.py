"""GENERATED from drypipe/state/models.py by drypipe/state/sqlgen.py: do not edit.
Regenerate with `python -m drypipe.state.sqlgen > drypipe/state/sql.py` (`make sql`);
tests/test_schema.py fails while this file differs from what sqlgen renders."""

SET_META = 'INSERT OR REPLACE INTO instance_meta (name, value) VALUES (?, ?)'
INSERT_CONF = 'INSERT INTO task_conf (id, json) VALUES (?, ?)'
INSERT_TASK = 'INSERT INTO task (id, "key", state, step, executer_type, conf_id, spec, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'
UPDATE_TASK_STATE = 'UPDATE task SET state=?, step=?, job_id=?, launched_at=?, started_at=?, ended_at=?, message=?, attempt=?, retry=? WHERE task.id = ?'
UPDATE_TASK_DEFINITION = 'UPDATE task SET spec=?, conf_id=?, executer_type=? WHERE task.id = ?'
SET_OUTPUT = 'INSERT OR REPLACE INTO output_var (task_id, name, value) VALUES (?, ?, ?)'
INSERT_TRANSITION = 'INSERT INTO transition (task_id, state, step, at) VALUES (?, ?, ?, ?)'
DELETE_OUTPUTS = 'DELETE FROM output_var WHERE output_var.task_id = ?'
SAVE_ATTEMPT = 'INSERT OR REPLACE INTO attempt (task_id, attempt, executer, native_id, host, hash, workdir, status, exit, step, submit, start, complete, cpu_user, cpu_sys, peak_rss, peak_rss_source, rchar, wchar, read_bytes, write_bytes, slurm_state, req_cpus, req_mem, req_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
DELETE_ATTEMPT = 'DELETE FROM attempt WHERE attempt.task_id = ? AND attempt.attempt = ?'
SAVE_FINGERPRINT = 'INSERT OR REPLACE INTO fingerprint (task_id, attempt, json) VALUES (?, ?, ?)'
LOAD_META = 'SELECT instance_meta.name, instance_meta.value \nFROM instance_meta'
LOAD_CONFS = 'SELECT task_conf.id, task_conf.json \nFROM task_conf'
LOAD_TASKS = 'SELECT task.id, task."key", task.state, task.step, task.executer_type, task.conf_id, task.spec, task.created_at \nFROM task ORDER BY task.id'
LOAD_TASK_RUNS = 'SELECT task.id, task.job_id, task.launched_at, task.started_at, task.ended_at, task.message, task.attempt, task.retry \nFROM task \nWHERE NOT (task.job_id IS NULL AND task.launched_at IS NULL AND task.started_at IS NULL AND task.ended_at IS NULL AND task.message IS NULL AND task.attempt = 0 AND task.retry = 0)'
LOAD_TASKS_WHOLE = 'SELECT task.id, task."key", task.state, task.step, task.executer_type, task.conf_id, task.spec, task.created_at, task.job_id, task.launched_at, task.started_at, task.ended_at, task.message, task.attempt, task.retry \nFROM task ORDER BY task.id'
COUNT_TASKS = 'SELECT count(*) AS count_1 \nFROM task'
COUNT_IN_STATE = 'SELECT count(*) AS count_1 \nFROM task \nWHERE task.state = ?'
LOAD_ATTEMPTS = 'SELECT attempt.task_id, attempt.attempt, attempt.executer, attempt.native_id, attempt.host, attempt.hash, attempt.workdir, attempt.status, attempt.exit, attempt.step, attempt.submit, attempt.start, attempt.complete, attempt.cpu_user, attempt.cpu_sys, attempt.peak_rss, attempt.peak_rss_source, attempt.rchar, attempt.wchar, attempt.read_bytes, attempt.write_bytes, attempt.slurm_state, attempt.req_cpus, attempt.req_mem, attempt.req_time \nFROM attempt'
LOAD_LAST_ATTEMPTS = 'SELECT attempt.task_id, attempt.attempt, attempt.executer, attempt.native_id, attempt.host, attempt.hash, attempt.workdir, attempt.status, attempt.exit, attempt.step, attempt.submit, attempt.start, attempt.complete, attempt.cpu_user, attempt.cpu_sys, attempt.peak_rss, attempt.peak_rss_source, attempt.rchar, attempt.wchar, attempt.read_bytes, attempt.write_bytes, attempt.slurm_state, attempt.req_cpus, attempt.req_mem, attempt.req_time \nFROM attempt JOIN (SELECT attempt.task_id AS task_id, max(attempt.attempt) AS n \nFROM attempt GROUP BY attempt.task_id) AS anon_1 ON anon_1.task_id = attempt.task_id AND attempt.attempt = anon_1.n'
LOAD_OUTPUTS = 'SELECT output_var.task_id, output_var.name, output_var.value \nFROM output_var'
LOAD_FINGERPRINT = 'SELECT fingerprint.json \nFROM fingerprint \nWHERE fingerprint.task_id = ? AND fingerprint.attempt = ?'
TASK_ROW = ('id', 'key', 'state', 'step', 'executer_type', 'conf_id', 'spec', 'created_at')
ATTEMPT_COLUMNS = ('task_id', 'attempt', 'executer', 'native_id', 'host', 'hash', 'workdir', 'status', 'exit', 'step', 'submit', 'start', 'complete', 'cpu_user', 'cpu_sys', 'peak_rss', 'peak_rss_source', 'rchar', 'wchar', 'read_bytes', 'write_bytes', 'slurm_state', 'req_cpus', 'req_mem', 'req_time')
