# Training: one job per task. Geometry and launcher follow train.resources (i2sb/cluster.py): one
# process on CPU or one GPU, torchrun for several GPUs on one node, srun with one rank per GPU
# across nodes. An interrupted job resumes from train/<task>/latest.pt when rerun; a job rerun
# because its settings changed (its config slice) trains afresh (--restart-changed).
from i2sb.cluster import train_job_resources, train_launcher

TRAIN_RES = CFG.train.resources


rule train:
    input:
        unpack(train_inputs),
        # ancient: a change elsewhere in the config does not retrain; the train slice
        # (train_inputs) says what does.
        config=ancient(CONFIG_JSON),
    output:
        # latest.pt is not declared: a failed job must keep it so the rerun resumes from it.
        summary=f"{RUN}/train/{{task}}/summary.json",
    params:
        launcher=train_launcher(PYTHON, TRAIN_RES.gpus, TRAIN_RES.nodes),
        keep_log=f"{PYTHON} -m i2sb.joblog keep",
        out_dir=lambda wc, output: os.path.dirname(output.summary),
        records=lambda wc, input: record_args("--downloads", input.downloads)
        + record_args("--sources", input.sources),
        # the folder sampling reads too: data.root, else the converted LMDB folder
        data_dir=eval_data_dir(),
    resources:
        **train_job_resources(
            TRAIN_RES.gpus, TRAIN_RES.nodes, TRAIN_RES.cpus_per_task, TRAIN_RES.mem_mb, TRAIN_RES.runtime_min
        ),
    threads: CFG.train.resources.cpus_per_task
    # The longest jobs start first: a free core goes to a waiting training before any sampling job
    # (the demo's third training otherwise waited behind sampling jobs, on the critical path).
    priority: 1
    log:
        f"{RUN}/logs/train/{{task}}.log",
    conda:
        ENV
    # i2sb.joblog keep: the log keeps every attempt (Snakemake deletes it before each), dated
    shell:
        # Every interpolated path quoted (:q): a results folder may hold spaces, quotes or $(...).
        "{params.keep_log} {log:q} train && "
        "{params.launcher} --config {input.config:q} --task {wildcards.task:q} --out {params.out_dir:q}{params.records}"
        " --data-dir {params.data_dir:q} --restart-changed --no-progress --debug >> {log:q} 2>&1"
