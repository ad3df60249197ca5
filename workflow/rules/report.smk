# The paper's tables and the NFE plots, read back from MLflow.


rule report:
    input:
        rules.track.output.marker,
    output:
        summary=REPORT_DONE,
    params:
        tracking=CFG.tracking,
        experiment=CFG.tracking.experiment or CFG.benchmark,
        out_dir=f"{RUN}/tables",
    log:
        f"{RUN}/logs/report.log",
    script:
        "../scripts/report.py"
