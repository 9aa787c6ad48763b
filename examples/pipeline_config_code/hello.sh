#!/usr/bin/env bash
# Found by `.calls("hello.sh")` because guide_pipeline_config.py sets
# pipeline_code_dir to this directory.
echo "hello world from $__pipeline_code_dir/hello.sh" > $greeting_file
echo "GREETING=${GREETING:-<unset>}" >> $greeting_file
