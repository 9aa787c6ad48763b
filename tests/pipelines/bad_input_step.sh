# a script step of tests/pipelines/bad_input.py:missing_script (resolved in $__pipeline_code_dir)
echo "from the script" > from-script.txt
