"""The task graph's upstream links, read from spec JSON without parsing it (scheduler/graph.py):
the same keys as the parsed spec gives, whatever the inputs' values, names and spacing."""
import json
import random

from drypipe.scheduler.graph import Node, upstream_keys
from drypipe.jsontext import dumps

TRICKY = ['"task":"x"', 'a\\"task\\":\\"y', '"task"', "task", '{"task":"z"}', "", "\n\t\\", "s-1"]


def random_spec(rng: random.Random) -> dict:
    inputs = []
    for n in range(rng.randint(0, 5)):
        name = rng.choice(["task", "i", f"in{n}", "prev"]) + str(n)
        kind = rng.choice(["value", "file", "var", "glob", "plainfile"])
        if kind == "value":
            inputs.append({"name": name, "kind": "value", "type": "str", "value": rng.choice(TRICKY)})
        elif kind == "plainfile":
            inputs.append({"name": name, "kind": "file", "path": rng.choice(TRICKY)})
        else:
            up = f"t{rng.randint(0, 9)}.{rng.choice(['a', 'b-1', '_c'])}"
            i = {"name": name, "kind": kind, "task": up}
            i.update({"file": {"path": f"output/{up}/f"}, "var": {"type": "int", "output": "task"},
                      "glob": {"pattern": f"output/{up}/*"}}[kind])
            inputs.append(i)
    outputs = {rng.choice(["task", "out", "n"]): {"kind": "var", "type": "int"} for _ in range(rng.randint(0, 2))}
    steps = [{"kind": "bash", "snippet": rng.choice(TRICKY)}]
    return {"inputs": inputs, "outputs": outputs, "steps": steps}


def test_upstream_keys_from_json_are_those_of_the_parsed_spec():
    rng = random.Random(12)
    for _ in range(3000):
        spec = random_spec(rng)
        expected = {i["task"] for i in spec["inputs"] if "task" in i}
        for text in (dumps(spec), json.dumps(spec), json.dumps(spec, indent=1)):  # older DBs: any spacing
            node = Node(1, "k", "waiting", None, "process", None, 1, text)
            assert upstream_keys(node) == expected, text
            assert node._spec is None  # not parsed for that
        assert upstream_keys(Node(1, "k", "waiting", None, "process", None, 1, None, spec)) == expected


def test_jsontext_writes_what_json_dumps_writes():
    """Digests of fingerprints recorded by earlier versions (json.dumps) must stay the same."""
    from drypipe.jsontext import dumps_sorted
    trees = [{"b": 1, "a": [1.5, {"z": None, "y": "é\n\"\\"}], "c": {"2": True, "1": -0.0}},
             {"x": 1e300, "k": [], "j": {}, "i": "\u2603"}]
    for t in trees:
        assert dumps(t) == json.dumps(t, separators=(",", ":"))
        assert dumps_sorted(t) == json.dumps(t, sort_keys=True, separators=(",", ":"))
