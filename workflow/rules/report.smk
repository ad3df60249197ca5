# The paper's tables and the NFE plots, read back from MLflow.


rule report:
    input:
        rules.track.output.marker,
    output:
        summary=REPORT_DONE,
    params:
        tracking=CFG.tracking,
        experiment=CFG.tracking.experiment or CFG.benchmark,
        tasks=CFG.tasks,
    log:
        f"{RUN}/logs/report.log",
    conda:
        ENV
    script:
        "../scripts/report.py"
