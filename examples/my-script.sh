#!/usr/bin/env bash
# Called by guide_script_call.py with `.calls("my-script.sh")`; resolved against
# $__pipeline_code_dir. Inputs, outputs and DryPipe variables are in the environment,
# and `export` sets the task's output variables, as in a bash snippet.
echo "my-script.sh running from $__pipeline_code_dir for task $__task_key"
echo $(( x * x )) > $result
export squared=$(( x * x ))
