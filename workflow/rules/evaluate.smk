# Evaluation: FID / CA / PSNR / SSIM of each gathered (task, sampler, NFE) into metrics.json. FID and CA
# are written as unavailable (with the reason) when their weights cannot be had, unless
# evaluate.require_external_metrics is true.


rule fid_val_stats:
    output:
        stats=f"{RUN}/fid/val_stats_{CFG.data.image_size}.npz",
    params:
        folder=f"{CFG.data.root}/val",
        image_size=CFG.data.image_size,
        batch_size=CFG.evaluate.batch_size,
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
        config=CFG,
        depends_on=section_hash("evaluate"),
    resources:
        **evaluate_job_resources(CFG.sample.gpus, CFG.sample.cpus),
    log:
        f"{RUN}/logs/evaluate/{{task}}_{{sampler}}_nfe{{nfe}}.log",
    conda:
        ENV
    script:
        "../scripts/evaluate.py"
