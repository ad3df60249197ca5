# Data: the resolved config, the demo photos (offline, from photos scikit-image ships) and the LMDB
# conversion per split.


rule resolved_config:
    output:
        config=CONFIG_JSON,
    params:
        resolved=CFG.to_dict(),
    log:
        f"{RUN}/logs/resolved_config.log",
    localrule: True
    conda:
        ENV
    script:
        "../scripts/resolved_config.py"


rule demo_photos:
    output:
        photos=directory(f"{RUN}/photos"),
    params:
        demo=CFG.data.demo,
        size=CFG.data.image_size,
    log:
        f"{RUN}/logs/demo_photos.log",
    conda:
        ENV
    script:
        "../scripts/demo_photos.py"


rule convert_lmdb:
    input:
        convert_source,
    output:
        # The index is written last: its presence marks a complete conversion. The LMDB itself is
        # not declared, so an interrupted conversion is resumed instead of deleted.
        index=f"{RUN}/data/{{split}}_faster_imagefolder.index.json",
    params:
        src=lambda wc: f"{image_folder_root()}/{wc.split}",
    threads: 2
    log:
        f"{RUN}/logs/convert_lmdb_{{split}}.log",
    conda:
        ENV
    script:
        "../scripts/convert_lmdb.py"
