# Evaluation: FID / CA / PSNR / SSIM of each gathered (task, NFE) into metrics.json. FID and CA
# are written as unavailable (with the reason) when their weights cannot be had, unless
# evaluate.require_external_metrics is true.


def needs_val_stats(task):
    """Non-SR FID is measured against the validation set's statistics, computed once here."""
    return (
        CFG.evaluate.fid
        and task_spec(task).fid_reference != FID_REF_TRAIN
        and not CFG.evaluate.fid_val_stats
        and CFG.data.kind == "imagefolder"
        and bool(CFG.data.root)
    )


def evaluate_inputs(wildcards):
    inputs = {"samples": rules.gather.output.samples.format(task=wildcards.task, nfe=wildcards.nfe)}
    if CFG.evaluate.fid and task_spec(wildcards.task).fid_reference == FID_REF_TRAIN:
        if CFG.evaluate.require_external_metrics or CFG.downloads.fid_reference:
            inputs["fid_reference"] = rules.download_fid_reference.output[0]
    if needs_val_stats(wildcards.task):
        inputs["val_stats"] = rules.fid_val_stats.output.stats
    return inputs


rule fid_val_stats:
    output:
        stats=f"{RUN}/fid/val_stats_{CFG.data.image_size}.npz",
    params:
        folder=f"{CFG.data.root}/val",
        image_size=CFG.data.image_size,
        batch_size=CFG.evaluate.batch_size,
    resources:
        gpu=CFG.sample.gpus,
    log:
        f"{RUN}/logs/fid_val_stats.log",
    script:
        "../scripts/fid_val_stats.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        metrics=f"{RUN}/eval/{{task}}/nfe{{nfe}}/metrics.json",
    params:
        config=CFG,
        depends_on=section_hash("evaluate"),
    resources:
        gpu=CFG.sample.gpus,
    log:
        f"{RUN}/logs/evaluate/{{task}}_nfe{{nfe}}.log",
    script:
        "../scripts/evaluate.py"
