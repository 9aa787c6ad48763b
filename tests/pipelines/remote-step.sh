# called by tests/pipelines/remote.py:remote_script, from $__pipeline_code_dir on the remote host
echo "script ran as $(whoami) from $__pipeline_code_dir" > "$o"
