# Sampling: one job per (task, sampler, NFE, partition), each writing its own part file atomically; a
# finished part is never recomputed. gather checks that the parts cover every index once. {sampler} is
# the label of a config `samplers` entry (ddpm, implicit-eta0, cddb-lam1, dbim-o2).


rule sample:
    input:
        unpack(sample_inputs),
    output:
        part=f"{RUN}/samples/{{task}}/{{sampler}}/nfe{{nfe}}/part_{{part}}_{{nparts}}.npz",
    params:
        data_dir=eval_data_dir(),
    retries: 2
    resources:
        **sample_job_resources(CFG.sample.gpus, CFG.sample.cpus),
    threads: 1
    log:
        f"{RUN}/logs/sample/{{task}}_{{sampler}}_nfe{{nfe}}_{{part}}_{{nparts}}.log",
    conda:
        ENV
    script:
        "../scripts/sample.py"


rule gather:
    input:
        part_files,
    output:
        samples=f"{RUN}/samples/{{task}}/{{sampler}}/nfe{{nfe}}/samples.npz",
    params:
        nparts=NPARTS,
    resources:
        **gather_job_resources(),
    log:
        f"{RUN}/logs/gather/{{task}}_{{sampler}}_nfe{{nfe}}.log",
    conda:
        ENV
    script:
        "../scripts/gather.py"
