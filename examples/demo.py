"""The demo of `make demo`: GC content of simulated sequencing reads of four primates.

    drypipe run --pipeline-instance-dir demo-instance --generator examples.demo:pipeline

For each sample (a fan-out over the inputs of SAMPLES):

    simulate.<s>    python step: simulate reads.fasta (deterministic, seeded);
                    bash step: its checksum            -> total_bases (int), checksum (str)
    split.<s>       bash: cut reads.fasta in chunks     -> fileset chunk.*.fasta
    gc.<s>.<NN>     one task per chunk (a fan-out over a fileset known only once split.<s>
                    ran): count bases and G/C           -> counts.tsv, bases (int), gc (int)
    summarize.<s>   python fan-in over gc.<s>.*: checks the chunks add up to total_bases
                                                        -> summary.json, gc_fraction (float)

then `report`, a python fan-in over every summarize.<s>, writes report.tsv.
With 4 samples: 4 simulate + 4 split + 19 gc + 4 summarize + 1 report = 32 tasks.
"""
import json
import random

from drypipe import DryPipe

# sample -> (random seed, number of reads, probability of G or C at each base)
SAMPLES = {
    "chimp": (1, 60, 0.40),
    "bonobo": (2, 90, 0.45),
    "gorilla": (3, 120, 0.55),
    "orangutan": (4, 100, 0.50),
}
READS_PER_CHUNK = 20


@DryPipe.python_call()
def simulate_reads(sample, seed, n_reads, gc_probability, reads):
    rng = random.Random(seed)
    total = 0
    with open(reads, "w") as f:
        for i in range(1, n_reads + 1):
            length = rng.randint(50, 150)
            bases = "".join(rng.choice("GC") if rng.random() < gc_probability else rng.choice("AT")
                            for _ in range(length))
            f.write(f">{sample}-read-{i}\n{bases}\n")
            total += length
    print(f"{sample}: {n_reads} reads, {total} bases")
    return {"total_bases": total}


@DryPipe.python_call()
def summarize(sample, counts, total_bases, summary):
    bases = gc = chunks = 0
    for path in counts():
        with open(path) as f:
            _name, b, g = f.read().split("\t")
        bases += int(b)
        gc += int(g)
        chunks += 1
    if bases != total_bases:
        raise ValueError(f"{sample}: chunks hold {bases} bases, simulate.{sample} wrote {total_bases}")
    fraction = gc / bases
    with open(summary, "w") as f:
        json.dump({"sample": sample, "chunks": chunks, "bases": bases, "gc": gc,
                   "gc_fraction": fraction}, f, indent=1)
    return {"gc_fraction": fraction}


@DryPipe.python_call()
def write_report(summaries, report):
    rows = []
    for path in summaries():
        with open(path) as f:
            rows.append(json.load(f))
    rows.sort(key=lambda r: r["gc_fraction"])
    with open(report, "w") as f:
        f.write("sample\tchunks\tbases\tgc\tgc_fraction\n")
        for r in rows:
            line = f"{r['sample']}\t{r['chunks']}\t{r['bases']}\t{r['gc']}\t{r['gc_fraction']:.4f}"
            f.write(line + "\n")
            print(line)


def dag(dsl):
    for sample, (seed, n_reads, gc_probability) in SAMPLES.items():
        simulate = dsl.task(
            key=f"simulate.{sample}"
        ).inputs(
            sample=sample, seed=seed, n_reads=n_reads, gc_probability=gc_probability
        ).outputs(
            reads=dsl.file("reads.fasta"), total_bases=int, checksum=str
        ).calls(
            simulate_reads
        ).calls("""
            export checksum=$(md5sum < "$reads" | cut -d' ' -f1)
            echo "reads.fasta: $total_bases bases, md5 $checksum"
        """)()
        yield simulate

        split = dsl.task(
            key=f"split.{sample}"
        ).inputs(
            simulate.outputs.reads
        ).outputs(
            chunks=dsl.fileset("chunk.*.fasta")
        ).calls(f"""
            awk -v per_chunk={READS_PER_CHUNK} '
                /^>/ {{ if (n % per_chunk == 0) out = sprintf("chunk.%02d.fasta", n / per_chunk + 1); n++ }}
                {{ print > out }}
            ' "$reads"
            ls chunk.*.fasta
        """)()
        yield split

        for _ in dsl.wait_for_tasks(split):
            for chunk in split.outputs.chunks.fetch():
                number = chunk.basename().split(".")[1]
                yield dsl.task(
                    key=f"gc.{sample}.{number}"
                ).inputs(
                    chunk=chunk
                ).outputs(
                    counts=dsl.file("counts.tsv"), bases=int, gc=int
                ).calls("""
                    export bases=$(grep -v '^>' "$chunk" | tr -d '\\n' | wc -c)
                    export gc=$(grep -v '^>' "$chunk" | tr -cd 'GC' | wc -c)
                    printf '%s\\t%d\\t%d' "${chunk##*/}" "$bases" "$gc" > "$counts"
                """)()

        for matcher in dsl.wait_for_matching_tasks(f"gc.{sample}.*"):
            yield dsl.task(
                key=f"summarize.{sample}"
            ).inputs(
                simulate.outputs.total_bases,
                sample=sample,
                counts=matcher.all.counts.as_glob_expression()
            ).outputs(
                summary=dsl.file("summary.json"), gc_fraction=float
            ).calls(
                summarize
            )()

    # every summarize.<s> must be done, not just those generated so far: wait for them by key
    for _ in dsl.wait_for_tasks(*(f"summarize.{s}" for s in SAMPLES)):
        for matcher in dsl.wait_for_matching_tasks("summarize.*"):
            yield dsl.task(
                key="report"
            ).inputs(
                summaries=matcher.all.summary.as_glob_expression()
            ).outputs(
                report=dsl.file("report.tsv")
            ).calls(
                write_report
            )()


def pipeline():
    return DryPipe.create_pipeline(dag)
