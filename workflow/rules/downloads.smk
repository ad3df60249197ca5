# External files. Each rule accepts a pre-placed file (config key or environment variable), else
# uses the cache or downloads with SHA-256 verification. Local rules: they run where the internet is.
# The output is a small JSON naming the verified file, read by the rules that need it.

localrules:
    download_adm_checkpoint,
    download_fid_reference,
    download_freeform_masks,
    download_subset_lists,
    download_checkpoint,


rule download_adm_checkpoint:
    input:
        slice_input("download_adm_checkpoint", keys=download_slice_keys(["adm_checkpoint"])),
    output:
        f"{RUN}/downloads/adm_checkpoint.json",
    log:
        f"{RUN}/logs/download_adm_checkpoint.log",
    params:
        names=["adm_checkpoint"],
    conda:
        ENV
    script:
        "../scripts/download.py"


rule download_fid_reference:
    input:
        slice_input("download_fid_reference", keys=download_slice_keys(["fid_reference"])),
    output:
        f"{RUN}/downloads/fid_reference.json",
    log:
        f"{RUN}/logs/download_fid_reference.log",
    params:
        names=["fid_reference"],
    conda:
        ENV
    script:
        "../scripts/download.py"


rule download_freeform_masks:
    input:
        slice_input("download_freeform_masks", keys=download_slice_keys(["freeform_masks"])),
    output:
        f"{RUN}/downloads/freeform_masks.json",
    log:
        f"{RUN}/logs/download_freeform_masks.log",
    params:
        names=["freeform_masks"],
    conda:
        ENV
    script:
        "../scripts/download.py"


rule download_subset_lists:
    input:
        slice_input("download_subset_lists", keys=download_slice_keys(["subset_fn", "subset_label"])),
    output:
        f"{RUN}/downloads/subset_lists.json",
    log:
        f"{RUN}/logs/download_subset_lists.log",
    params:
        names=["subset_fn", "subset_label"],
    conda:
        ENV
    script:
        "../scripts/download.py"


# A published run folder (checkpoints.source: published): pre-placed at checkpoints.dir/<task>, or
# fetched there with gdown; checked (latest.pt net/ema, options.pkl, task, image size) either way.
rule download_checkpoint:
    input:
        slice_input("download_checkpoint"),
    output:
        record=f"{RUN}/downloads/checkpoint_{{task}}.json",
    log:
        f"{RUN}/logs/download_checkpoint/{{task}}.log",
    conda:
        ENV
    script:
        "../scripts/download_checkpoint.py"
