"""Property: any text (quotes, $(), backticks, ;, newlines, =, unicode) reaches bash and python
tasks byte for byte, and output variables come back byte for byte, also to downstream tasks."""
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, drypipe
from drypipe import Instance

META = list("'\"$`;\\\n\r\t =(){}[]<>|&*?!#~%^,.:@+-") + ["$(", "`id`", "${x}", "\\n", "'\"'", "$'\\x41'",
                                                        "=", "==", "é", "日本", "\U0001F600", "x=1"]
values = st.lists(
    st.one_of(
        st.lists(st.sampled_from(META), max_size=12).map("".join),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30),
    ),
    min_size=1, max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vals=values)
def test_values_cross_bash_and_python_byte_for_byte(tmp_path_factory, vals):
    inst = tmp_path_factory.mktemp("meta")
    (inst / "values.json").write_text(json.dumps(vals), encoding="utf-8")
    res = drypipe("run", "-q", "--pipeline-instance-dir", inst, "--generator", "tests.pipelines.metachars:dag",
                  cwd=REPO)
    assert res.returncode == 0, res
    instance = Instance(str(inst))
    for i, v in enumerate(vals):
        for kind in ("bash", "py", "down"):
            key = f"{kind}-{i}"
            with open(os.path.join(inst, "output", key, "out.txt"), "rb") as f:
                assert f.read() == v.encode("utf-8"), key
            assert instance.outputs(key)["r"] == v, key
