# Evaluation: the metrics of i2sb/metric_table.py listed in evaluate.metrics, of each gathered (task,
# sampler, NFE) into metrics.json. One whose weights cannot be had is written as unavailable (with
# the reason), unless evaluate.require_external_metrics is true.


rule fid_val_stats:
    input:
        # the validation images, by their names, sizes and mtimes (a replaced photo reruns it)
        sources=sources_record("val"),
        config=slice_input("fid_val_stats"),
    output:
        stats=f"{RUN}/fid/val_stats_{CFG.data.image_size}.npz",
    resources:
        **evaluate_job_resources(CFG.sample.gpus, CFG.sample.cpus),
    log:
        f"{RUN}/logs/fid_val_stats.log",
    conda:
        ENV
    script:
        "../scripts/fid_val_stats.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=f"{RUN}/eval/{{task}}/{{sampler}}/nfe{{nfe}}/metrics.json",
    params:
        where={"results_dir": CFG.results_dir, "benchmark": CFG.benchmark},
    resources:
        **evaluate_job_resources(CFG.sample.gpus, CFG.sample.cpus),
    log:
        f"{RUN}/logs/evaluate/{{task}}_{{sampler}}_nfe{{nfe}}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
