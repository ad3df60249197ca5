# MLflow: the only step that writes to the tracking store (a local rule, one job for all runs, so
# compute nodes need no tracking server and no two processes write one sqlite file).

localrules:
    track,
    report,


rule track:
    input:
        metrics=evaluated(),
        checkpoints=[checkpoint_ready(task) for task in TASKS],
        config=CONFIG_JSON,
    output:
        marker=f"{RUN}/tracking/tracked.json",
    params:
        evaluations=evaluations(),
    log:
        f"{RUN}/logs/track.log",
    conda:
        ENV
    script:
        "../scripts/track.py"
