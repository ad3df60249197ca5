# Data: the resolved config, the demo photos (offline, from photos scikit-image ships) and the LMDB
# conversion per split; for paired data, the record of each split's pairs.


rule resolved_config:
    input:
        slice_input("all", VALUES),
    output:
        config=CONFIG_JSON,
    log:
        f"{RUN}/logs/resolved_config.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/resolved_config.py"


rule demo_photos:
    input:
        slice_input("demo_photos"),
    output:
        photos=directory(f"{RUN}/photos"),
    log:
        f"{RUN}/logs/demo_photos.log",
    conda:
        ENV
    script:
        "../scripts/demo_photos.py"


rule convert_lmdb:
    input:
        source=convert_source,
        config=slice_input("convert_lmdb"),
    output:
        # The index is written last: its presence marks a complete conversion. The LMDB itself is
        # not declared, so an interrupted conversion is resumed instead of deleted.
        index=f"{RUN}/data/{{split}}_faster_imagefolder.index.json",
        # The source folder's names, sizes and mtimes: planning compares them with the folder's
        # and converts again when a photo was replaced in place (common.smk: rerun_if_changed_on_disk).
        sources=f"{RUN}/data/{{split}}_sources.json",
    params:
        src=lambda wc: image_folder(wc.split),
    threads: 2
    log:
        f"{RUN}/logs/convert_lmdb_{{split}}.log",
    conda:
        ENV
    script:
        "../scripts/convert_lmdb.py"


# Paired data (data.kind: paired) is read where it lies, never converted: this record of a split's
# pairs (the listing CSV and every file it names, or A/ and B/: names, sizes, mtimes) is what
# training and sampling read instead of an LMDB index. Planning stats the pairs (no image is read)
# and rewrites it, so those jobs rerun, when either side of a pair was replaced in place.
rule paired_sources:
    input:
        unpack(paired_sources_inputs),
    output:
        record=f"{RUN}/data/{{split}}_paired_sources.json",
    localrule: True
    log:
        f"{RUN}/logs/paired_sources_{{split}}.log",
    conda:
        ENV
    script:
        "../scripts/paired_sources.py"
