# External files. Each rule accepts a pre-placed file (config key or environment variable), else
# uses the cache or downloads with SHA-256 verification. Local rules: they run where the internet is.
# The output is a small JSON naming the verified file, its SHA-256 and its stat, read by the rules
# that need it. Planning compares that stat with the file: one replaced in place or gone reruns the
# download job and the jobs reading its record (common.smk: download_inputs).

localrules:
    download_adm_checkpoint,
    download_fid_reference,
    download_freeform_masks,
    download_subset_lists,
    download_checkpoint,
    placed_fid_val_stats,


rule download_adm_checkpoint:
    input:
        download_inputs("download_adm_checkpoint", download_slice_keys(["adm_checkpoint"])),
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
        download_inputs("download_fid_reference", download_slice_keys(["fid_reference"])),
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
        download_inputs("download_freeform_masks", download_slice_keys(["freeform_masks"])),
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
        download_inputs("download_subset_lists", download_slice_keys(["subset_fn", "subset_label"])),
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


# The user's FID statistics of the validation set (evaluate.fid_val_stats), read where placed and
# recorded as a download is, so that evaluation reruns when the file is replaced in place.
rule placed_fid_val_stats:
    input:
        download_inputs("placed_fid_val_stats"),
    output:
        f"{RUN}/downloads/fid_val_stats.json",
    log:
        f"{RUN}/logs/placed_fid_val_stats.log",
    conda:
        ENV
    script:
        "../scripts/placed_fid_val_stats.py"


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
