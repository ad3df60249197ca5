# MLflow: the evaluation runs, and the training runs completed from metrics.jsonl (a local rule,
# one job for all runs). Training jobs may also log live (tracking.live); nothing depends on it.

localrules:
    track,
    report,


rule track:
    input:
        metrics=evaluated(),
        checkpoints=[checkpoint_record(task) for task in TASKS],
        config=CONFIG_JSON,
    output:
        marker=f"{RUN}/tracking/tracked.json",
    params:
        runs=tracked_runs(),
    log:
        f"{RUN}/logs/track.log",
    conda:
        ENV
    script:
        "../scripts/track.py"
