# What jobs read, as files that change with it: each job's slice of the config (named by its hash)
# and the content fingerprint of each task's latest.pt. Local and tiny; planning writes neither.
# Local: on Slurm they run in the Snakemake process. A record submitted as a job would wait in the
# queue between training and sampling for a hash of seconds (download_checkpoint, local too,
# reads and checks a published latest.pt there).

localrules:
    config_slice,
    checkpoint_record,


wildcard_constraints:
    slice=r"[a-z0-9_.-]+",
    digest=r"[0-9a-f]{16}",


# RUN/config/<slice>-<sha16>.json; writing it removes the slice's other (stale) versions, so
# switching a value A -> B -> A reruns the jobs that read it each time.
rule config_slice:
    output:
        f"{RUN}/config/{{slice}}-{{digest}}.json",
    params:
        values=lambda wc: SLICES[wc.slice],
    log:
        f"{RUN}/logs/config_slice/{{slice}}-{{digest}}.log",
    conda:
        ENV
    script:
        "../scripts/config_slice.py"


# The content fingerprint (SHA-256) of the latest.pt that sampling reads, hashed once per file
# through the fingerprint cache (never beside latest.pt: a published folder may be read-only).
# Planning compares the file's stat with the one recorded here and reruns this job, and so
# everything after it, when latest.pt was swapped in place (common.smk: rerun_if_changed_on_disk).
rule checkpoint_record:
    input:
        unpack(checkpoint_record_inputs),
    output:
        record=f"{RUN}/checkpoints/{{task}}.json",
    params:
        # a trained run's folder; a published one is read from its download record (input.ready)
        folder=lambda wc: "" if CFG.published else trained_folder(wc.task),
    log:
        f"{RUN}/logs/checkpoint_record/{{task}}.log",
    conda:
        ENV
    script:
        "../scripts/checkpoint_record.py"
