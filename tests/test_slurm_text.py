"""The pure Slurm text functions, on output recorded from the test cluster (tests/recorded/)."""
import subprocess
from pathlib import Path

import pytest

from drypipe.executors import slurm_text as st

REC = Path(__file__).parent / "recorded"


def test_parse_squeue_recorded_states():
    jobs = st.parse_squeue((REC / "squeue-r-all.txt").read_text())
    assert jobs == {"10": ("CANCELLED", "Priority"), "8_2": ("COMPLETED", "None"), "8_0": ("COMPLETED", "None"),
                    "8_1": ("COMPLETED", "None"), "9": ("FAILED", "NonZeroExitCode")}
    assert [st.outcome(s) for s, _ in jobs.values()] == ["killed", "completed", "completed", "completed", "failed"]


def test_parse_squeue_pending_array_elements_one_per_line():
    jobs = st.parse_squeue((REC / "squeue-array-pending.txt").read_text())
    assert sorted(jobs) == ["13_0", "13_1", "13_2", "13_3", "13_4"]
    assert jobs["13_3"] == ("PENDING", "JobArrayTaskLimit")
    assert {st.outcome(s) for s, _ in jobs.values()} == {"active"}


@pytest.mark.parametrize("state,expected", [("TIMEOUT", "timed-out"), ("DEADLINE", "timed-out"),
                                            ("NODE_FAIL", "failed"), ("OUT_OF_MEMORY", "failed"),
                                            ("PREEMPTED", "killed"), ("COMPLETING", "active"),
                                            ("CANCELLED+", "killed"), ("CANCELLED by 0", "killed")])
def test_outcome_of_other_states(state, expected):
    assert st.outcome(state) == expected


def test_max_array_size_from_recorded_config():
    config = st.parse_scontrol_config((REC / "scontrol-show-config.txt").read_text())
    assert config["ClusterName"] == "drypipe-test"
    assert st.max_array_size(config) == 1001
    assert st.max_array_size({}) == 1001 and st.max_array_size({"MaxArraySize": "100"}) == 100


@pytest.mark.parametrize("out,job", [("12345\n", "12345"), ("77;cluster-a\n", "77"),
                                     ("sbatch: warning: x\n88\n", "88")])
def test_parse_sbatch_parsable(out, job):
    assert st.parse_sbatch_parsable(out) == job


def test_parse_sbatch_garbage_is_an_error():
    with pytest.raises(ValueError, match="unexpected sbatch output"):
        st.parse_sbatch_parsable("sbatch: error: Batch job submission failed\n")


def test_sbatch_argv_keeps_every_value_one_argument():
    argv = st.sbatch_argv(".drypipe/_arrays/a1/array.sh", job_name="drypipe-abc", output="x/slurm-%a.out",
                          account="my acct", options=["--time=0:5:00", "--mem=1G"], array="0-9%2",
                          comment="a1")
    assert argv == ["sbatch", "--parsable", "--job-name=drypipe-abc", "--output=x/slurm-%a.out",
                    "--account=my acct", "--array=0-9%2", "--comment=a1", "--time=0:5:00", "--mem=1G",
                    ".drypipe/_arrays/a1/array.sh"]
    import shlex
    assert shlex.split(st.shell_command(argv)) == argv


@pytest.mark.parametrize("n,limit,indices,spec", [(1, None, None, "0"), (10, None, None, "0-9"),
                                                   (10, 3, None, "0-9%3"), (0, None, [0, 1, 2, 5, 7, 8], "0-2,5,7-8")])
def test_array_spec(n, limit, indices, spec):
    assert st.array_spec(n, limit, indices) == spec


def test_chunks_respect_max_array_size():
    assert [len(c) for c in st.chunks(list(range(250)), 100)] == [100, 100, 50]


def test_squeue_argv_covers_the_instance_in_one_call():
    assert st.squeue_argv("drypipe-abc") == ["squeue", "-h", "-r", "-t", "all", "--name=drypipe-abc", "-o", "%i|%T|%r"]


def test_array_script_maps_index_to_task(tmp_path):
    """Run the rendered array script with bash, a fake task launcher per key."""
    for key in ("a", "b", "c"):
        d = tmp_path / ".drypipe" / key
        d.mkdir(parents=True)
        (d / "task").write_text(f'echo "{key} $1 $2" > ran.txt\n')
    (tmp_path / "keys.tsv").write_text("a\t0\nb\t2\nc\t0\n")
    script = tmp_path / "array.sh"
    script.write_text(st.render_array_script("keys.tsv"))
    subprocess.run(["bash", str(script)], cwd=tmp_path, env={"SLURM_ARRAY_TASK_ID": "1", "PATH": "/usr/bin:/bin"},
                   check=True)
    assert (tmp_path / "ran.txt").read_text() == "b run 2\n"
    res = subprocess.run(["bash", str(script)], cwd=tmp_path, env={"SLURM_ARRAY_TASK_ID": "7", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert res.returncode == 2 and "no task for array index 7" in res.stderr


def test_squeue_comments_map_array_dirs_to_their_job():
    from drypipe.executors import slurm_text as st
    recorded = "41_0|7\n41_1|7\n42_0|8\n43|\n"
    assert st.parse_squeue_comments(recorded) == {"7": "41", "8": "42", "": "43"}
    assert st.squeue_comment_argv("drypipe-x")[-2:] == ["-o", "%i|%k"]


def test_pending_job_ids_say_where_the_job_will_be_found():
    from drypipe.executors.slurm import parse_pending_job_id, pending_job_id
    assert parse_pending_job_id(pending_job_id(".drypipe/_arrays/12", 3)) == (".drypipe/_arrays/12", 3)
    assert parse_pending_job_id("41_3") is None and parse_pending_job_id(None) is None


def test_recover_jobs_reads_the_job_id_file_else_squeue_by_comment(tmp_path):
    from drypipe.executors.slurm import SlurmExecutor
    (tmp_path / ".drypipe" / "_arrays" / "1").mkdir(parents=True)
    (tmp_path / ".drypipe" / "_arrays" / "1" / "job-id").write_text("40\n41\n")
    (tmp_path / ".drypipe" / "_arrays" / "2").mkdir(parents=True)
    calls = []

    class Done:
        returncode, stdout, stderr = 0, "77_0|2\n77_1|2\n", ""

    def runner(argv, cwd=None, timeout=300):
        calls.append(argv)
        return Done()

    ex = SlurmExecutor(str(tmp_path), runner=runner)
    found = ex.recover_jobs({"a": (".drypipe/_arrays/1", 2), "b": (".drypipe/_arrays/2", 1),
                             "c": (".drypipe/_arrays/3", 0)})
    assert found == {"a": "41_2", "b": "77_1"}  # c: submitted nowhere
    assert len(calls) == 1  # one squeue for every array without a job-id file


# -- retry_scale ------------------------------------------------------------------------------------

def test_scaled_options_multiply_mem_and_time_per_retry():
    from drypipe.executors.slurm_text import scaled_options
    opts = ["--mem=1G", "--time=0:10:00", "--cpus-per-task=2"]
    assert scaled_options(opts, {"mem": 2, "time": 1.5}, 0) == opts
    assert scaled_options(opts, {"mem": 2, "time": 1.5}, 1) == ["--mem=2048M", "--time=00:15:00", "--cpus-per-task=2"]
    assert scaled_options(opts, {"mem": 2}, 2) == ["--mem=4096M", "--time=0:10:00", "--cpus-per-task=2"]
    # separate values, -t, minutes, days, units, what is not a size left alone
    assert scaled_options(["--mem", "500", "-t", "90"], {"mem": 1.5, "time": 2}, 1) == ["--mem", "750M", "-t", "03:00:00"]
    assert scaled_options(["--time=1-12", "--mem=512K"], {"mem": 3, "time": 2}, 1) == ["--time=3-00:00:00", "--mem=2M"]
    assert scaled_options(["--mem=lots", "--time=forever"], {"mem": 2, "time": 2}, 1) == ["--mem=lots", "--time=forever"]


def test_an_out_of_memory_job_says_so():
    from drypipe.executors.slurm import SlurmEnded, ended_state
    state, step, message = ended_state("failed.1", SlurmEnded("k", None, slurm_state="OUT_OF_MEMORY"), 1)
    assert (state, step) == ("failed", 1) and "OUT_OF_MEMORY" in message and "--mem" in message
    state, step, message = ended_state("step-started.0", SlurmEnded("k", None, slurm_state="OUT_OF_MEMORY"), 0)
    assert (state, step) == ("failed", 0) and "ran out of memory" in message
