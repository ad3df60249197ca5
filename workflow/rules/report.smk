# The paper's tables and the NFE plots, read back from MLflow.


rule report:
    input:
        marker=rules.track.output.marker,
        config=slice_input("report"),
    output:
        summary=f"{RUN}/tables/tables.json",
    log:
        f"{RUN}/logs/report.log",
    conda:
        ENV
    script:
        "../scripts/report.py"
